"""Training only (torch): the models as torch modules. Never imported by the runtime."""
