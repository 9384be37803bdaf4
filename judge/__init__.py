"""judgeforge: train and serve local LLM judges.

The package's rooms follow the pipeline, each importing only the rooms below it:

    core/       records, errors, JSON Lines, config files, manifests, run locks, output folders
    templates/  named, versioned prompts with their parsers
    backends/   every judge behind one interface (vLLM, transformers, OpenAI-compatible), its layers
                (retry, reply cache, cost), model loading, the dtype rule, adapter folders
    scoring/    the one judge loop (judging), `score` in one process or on Ray replicas
    data/       `data convert` importers and pairing
    eval/       metrics, predictions and gold labels, evaluate, benchmarks, the judge card, reports
    distill/    the teacher's verdicts (live or Batch API), filter, preference export
    cascade/    calibrate a threshold, escalate the unsure items to the teacher
    reward/     the judge as a reward for RL trainers (TRL, OpenRLHF)
    cli/        `judgeforge`: one module per verb over the functions above

The core is light to import (no torch, no vLLM); heavy backends load inside the functions that
need them.
"""

import importlib
import sys
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec

__version__ = "0.1.0"

# Modules that moved into the rooms above keep their old import paths for code written against
# them (`from judge.evaluate import evaluate` still works): each old name loads the module itself.
_MOVED = {
    "judge.records": "judge.core.records", "judge.errors": "judge.core.errors", "judge.jsonl": "judge.core.jsonl",
    "judge.convert": "judge.data.convert", "judge.judging": "judge.scoring.judging", "judge.score": "judge.scoring.score",
    "judge.scale": "judge.scoring.ray", "judge.evaluate": "judge.eval.evaluate", "judge.metrics": "judge.eval.metrics",
    "judge.report": "judge.eval.report", "judge.filter": "judge.distill.filter", "judge.export": "judge.distill.export",
    "judge.calibrate": "judge.cascade.calibrate", "judge.models": "judge.backends.models",
}


class _MovedModules(MetaPathFinder, Loader):
    def find_spec(self, name, path=None, target=None):
        return ModuleSpec(name, self) if name in _MOVED else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        # the import system returns what sys.modules holds under the name once this returns
        sys.modules[module.__name__] = importlib.import_module(_MOVED[module.__name__])


sys.meta_path.insert(0, _MovedModules())  # before the path finders: an old name is never a file
