"""The ``msqnet`` command as a script file, for launchers that need one (``torchrun`` in tests)."""
import sys

from msqnet.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
