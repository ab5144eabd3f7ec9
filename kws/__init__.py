"""Personalised wake-word spotting for the Auto-KWS 2021 protocol.

Light on purpose: importing ``kws`` loads no model; the submodules do, when used.
"""
__version__ = "0.1.0"
