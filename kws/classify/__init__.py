"""kws classify: the AutoSpeech protocol (an anytime classifier under a time budget, scored by ALC) on the
frozen representations of kws.classify.views. Runtime only: numpy and scipy, no scikit-learn."""
