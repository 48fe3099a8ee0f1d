"""``python -m booking.localstack up|status|running|url|redis-url|down``."""

import sys

from booking.localstack.cli import main

sys.exit(main())
