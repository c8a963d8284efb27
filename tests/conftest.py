import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # helpers and test agents by module name
