"""Developer support shared by the tests and the repository's scripts (not part of the engine).

``faults``: corrupt a good OpenVINO IR the ways real converters fail. Import it with the
repository root on ``sys.path`` (pytest's conftest and the scripts under ``scripts/`` put it
there): ``from tests.support import faults``.
"""
