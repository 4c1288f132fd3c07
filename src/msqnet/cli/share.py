"""Sharing commands: ``card`` (print a model card), ``push`` (publish to the hub), ``app`` (a page to try a model)."""
from __future__ import annotations

import argparse
import sys

from .arguments import port_number, positive_float, positive_int


def _card(args: argparse.Namespace) -> int:
    from ..checkpoint import read_card

    sys.stdout.write(read_card(args.checkpoint))
    return 0


def _push(args: argparse.Namespace) -> int:
    from ..checkpoint.hub import push_checkpoint

    url = push_checkpoint(args.checkpoint, args.repo, revision=args.revision, private=args.private or None,
                          commit_message=args.message)
    print(f"pushed {args.checkpoint} -> {args.repo}: {url}")
    return 0


def _app(args: argparse.Namespace) -> int:
    try:
        from ..app.page import serve
    except ImportError as e:
        raise ValueError(f"the web page needs Gradio: pip install 'msqnet[app]' ({e})") from None
    serve(args.checkpoint, examples=args.examples, host=args.host, port=args.port, window=args.window,
          stride=args.stride, top_k=args.top_k)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``card``, ``push`` and ``app``."""
    p = sub.add_parser("card", help="print a checkpoint's model card (README.md)")
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="model folder, run folder or hub repo id user/name[@revision]")
    p.set_defaults(func=_card)

    p = sub.add_parser(
        "push", help="publish a checkpoint to the Hugging Face hub",
        description="Upload a checkpoint's model files and model card to a hub model repo (created when missing). "
                    "Frozen pretrained parts stay stored by reference. Log in first (hf auth login) or set HF_TOKEN.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="model folder, training state or run folder (its best/)")
    p.add_argument("repo", metavar="REPO", help="hub repo id, user/name")
    p.add_argument("--revision", help="branch to commit to (created when missing; default: the main branch)")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--message", help="commit message")
    p.set_defaults(func=_push)

    p = sub.add_parser(
        "app", help="serve a local web page to try a model on videos (needs msqnet[app])",
        description="A Gradio page: upload or pick a video, type class names (open-vocabulary models) or use the "
                    "trained ones, and get the top labels; videos longer than --window also get a timeline.",
    )
    p.add_argument("--checkpoint", required=True, help="model folder, run folder or hub repo id user/name[@revision]")
    p.add_argument("--examples", help="folder of videos offered as examples on the page")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_number, default=7860, help="port, 0..65535 (default 7860; 0: any free one)")
    p.add_argument("--window", type=positive_float, default=4.0,
                   help="seconds per timeline window; videos longer than this get a timeline (default 4)")
    p.add_argument("--stride", type=positive_float, default=2.0, help="seconds between timeline windows (default 2)")
    p.add_argument("--top-k", type=positive_int, default=5, help="labels shown (default 5)")
    p.set_defaults(func=_app)
