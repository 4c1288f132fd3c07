"""Video data: decoding, frame sampling, clip transforms and one adapter per dataset format."""
from .records import ClipRecord

__all__ = ["ClipRecord"]
