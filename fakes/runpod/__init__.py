"""A fake RunPod (REST v2 subset and HTTP proxy) for tests and demos.

Run it with `python -m fakes.runpod`; import `FakeRunPod` in tests.
"""

from fakes.runpod.server import DEFAULT_API_KEY, FakeRunPod
from fakes.runpod.state import Switches

__all__ = ["DEFAULT_API_KEY", "FakeRunPod", "Switches"]
