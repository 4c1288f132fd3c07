"""msqnet: actor-agnostic, multi-label video action recognition with multi-modal queries (MSQNet)."""
__version__ = "0.1.0"
