import sys

from respq.cli import main

sys.exit(main())
