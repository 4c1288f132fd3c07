"""msqnet: actor-agnostic, multi-label video action recognition with multi-modal queries (MSQNet)."""
from __future__ import annotations

import importlib

from ._version import __version__

# The public API. Its modules bring torch and transformers (`import msqnet.inference`: 12 s of CPU on the
# 2-core development machine, against 0.3 s for `import msqnet.metrics` and 5.0 s for `msqnet --help`),
# so they load on first use and `msqnet.metrics` or the CLI's help stay quicker. The first use also imports msqnet.inference, which
# installs `model.predict` and `model.explain` on every MSQNet.
_LAZY = {
    "load_model": "msqnet.checkpoint",
    "save_model": "msqnet.checkpoint",
    "read_card": "msqnet.checkpoint",
    "create_model": "msqnet.models",
    "list_presets": "msqnet.models",
    "get_model_config": "msqnet.models",
    "MSQNet": "msqnet.models",
    "ModelConfig": "msqnet.models",
    "predict": "msqnet.inference",
    "Prediction": "msqnet.inference",
    "explain": "msqnet.inference",
    "Explanation": "msqnet.inference",
    "train": "msqnet.engine",
    "TrainConfig": "msqnet.engine",
    "load_train_config": "msqnet.engine",
    "evaluate_checkpoint": "msqnet.engine",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    """The public API's names, each imported from its package on first use."""
    if name in _LAZY:
        importlib.import_module("msqnet.inference")
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'msqnet' has no attribute {name!r}")
