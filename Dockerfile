# The 3D Pose Factory worker image: the RunPod serverless handler (pod_worker/handler.py), which
# renders JobSpecs with bpy 5.0.1 in a child process and stores the batch in R2 (docs/deployment.md).
#
#   scripts/build_and_push.sh            # POSE_FACTORY_IMAGE=docker.io/<user>/pose-factory-worker
#   docker build --platform linux/amd64 -t pose-factory-worker .
#
# Base: an NVIDIA CUDA image, so the NVIDIA container runtime mounts the driver (libcuda, and
# libnvoptix with the "graphics" capability below) that Cycles loads at run time. Cycles brings
# its own compiled kernels (sm_50…sm_120 cubins, PTX for the rest); it does not use the CUDA
# toolkit libraries in the image. CUDA 12.8 matches .runpod/hub.json's allowedCudaVersions.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu22.04
FROM ${CUDA_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics

# CPython 3.11 exactly (bpy 5.0.1: Requires-Python ==3.11.*) from the deadsnakes PPA: Ubuntu 22.04
# ships 3.10, and a python:3.11 image is Debian-built against another glibc/libssl than this base.
# bpy's system libraries (from `ldd` of bpy/__init__.so and its bundled libs: X11, Xi, Xfixes,
# Xrender, xkbcommon, SM/ICE, Xt, GL/GLX; Xxf86vm as Blender's Linux docs list it; EGL for a
# headless GPU context), glib for the OpenCV build MediaPipe pulls in, and CA certificates for R2.
RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common gpg-agent ca-certificates \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      python3.11 python3.11-venv python3.11-dev \
      libx11-6 libxi6 libxxf86vm1 libxfixes3 libxrender1 libxext6 libxkbcommon0 \
      libsm6 libice6 libxt6 libgl1 libglx0 libegl1 libgles2 \
      libglib2.0-0 libgomp1 zlib1g \
 && apt-get purge -y --auto-remove software-properties-common \
 && rm -rf /var/lib/apt/lists/*

# The worker environment in its own venv (no clash with the system Python or PEP 668).
RUN python3.11 -m venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first, so a code change does not reinstall bpy (≈ 1 GB) and MediaPipe.
# `pip check` must be clean but for one known line: bpy 5.0.1's wheel metadata is tagged cp39
# (its file name says cp311), so pip reports it "not supported on this platform"; it works.
# The imports at the end fail the build, not the first job, when a system library is missing.
COPY pod_worker/requirements.txt pod_worker/requirements.txt
RUN python -m pip install --upgrade pip \
 && python -m pip install -r pod_worker/requirements.txt \
 && { python -m pip check || true; } \
      | grep -v '^bpy 5\.0\.1 is not supported on this platform$' | (! grep .) \
 && python -c "import bpy, cv2, mediapipe, runpod, boto3, OpenEXR; print('bpy', bpy.app.version_string)"

# The code the handler runs: the core package, the Blender-side scripts (run as
# `python -m blender_scripts.render_batch` in a child process, cwd /app) and the worker.
COPY pose_factory/ pose_factory/
COPY blender_scripts/ blender_scripts/
COPY pod_worker/ pod_worker/

# Without R2 variables the worker writes to a local folder (a network volume when one is mounted).
ENV POSE_FACTORY_WORKER_PYTHON=/opt/venv/bin/python

CMD ["python", "-u", "pod_worker/handler.py"]
