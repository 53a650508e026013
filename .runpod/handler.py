"""RunPod Hub entry point: the Hub looks for handler.py in .runpod/ or the repository root.
The worker's handler lives in pod_worker/handler.py; this starts it under the SDK."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pod_worker.handler import handler  # noqa: E402

if __name__ == "__main__":
    import runpod

    runpod.serverless.start({"handler": handler})
