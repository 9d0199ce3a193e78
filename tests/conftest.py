import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the repository root: `from tests.support import faults` (and the engine of this checkout)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

# No hub at test time: anything that tries to download must fail fast, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A verdict that violates the schema its gate names is an internal bug: in the tests it raises (after it
# is printed), so whichever test produced it fails. Child processes inherit it.
os.environ.setdefault("MODELGATE_STRICT_VERDICTS", "1")
