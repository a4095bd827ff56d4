import sys

from kodad.cli import main

sys.exit(main())
