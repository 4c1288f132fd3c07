"""msqnet: actor-agnostic, multi-label video action recognition with multi-modal queries (MSQNet)."""
from __future__ import annotations

__version__ = "0.1.0"

# Heavy submodules (torch, transformers) load on first use, so `msqnet.metrics` or the CLI's help stay quick.
_LAZY = {
    "load_model": "msqnet.checkpoint",
    "save_model": "msqnet.checkpoint",
    "create_model": "msqnet.models",
    "list_presets": "msqnet.models",
    "get_model_config": "msqnet.models",
    "MSQNet": "msqnet.models",
    "ModelConfig": "msqnet.models",
    "explain": "msqnet.inference.explain",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'msqnet' has no attribute {name!r}")
