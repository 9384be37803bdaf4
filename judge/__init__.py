"""judgeforge: train and serve local LLM judges.

The core package is light to import (no torch, no vLLM): records, templates, parsers, metrics.
Heavy backends are imported inside the functions that need them.
"""

__version__ = "0.1.0"
