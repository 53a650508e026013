# The 3D Pose Factory worker image: the RunPod serverless handler (pod_worker/handler.py), which
# renders JobSpecs with bpy 5.0.1 in a child process and stores the batch in R2 (docs/deployment.md).
#
#   scripts/build_and_push.sh            # POSE_FACTORY_IMAGE=docker.io/<user>/pose-factory-worker
#   docker build --platform linux/amd64 -t pose-factory-worker .
#   sudo scripts/build_image_local.sh    # without Docker: buildah on a debootstrapped Debian base
#
# Base: Debian 12 (bookworm), whose own python3.11 is the CPython 3.11 bpy 5.0.1 requires. No CUDA
# image: Cycles ships its compiled GPU kernels inside bpy and needs only the NVIDIA driver
# (libcuda, and libnvoptix for OptiX), which the NVIDIA container runtime mounts from the host
# when the variables below ask for it. Blender's manual: "Normally users do not need to install
# the CUDA toolkit as Blender comes with precompiled kernels" (Cycles → GPU Rendering).
# BASE_IMAGE is any Debian 12 image: the registry's slim one, or the local debootstrap base that
# scripts/build_image_local.sh imports where no registry can be reached.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

# --- runtime: what the worker needs at run time, shared by both stages ---------------------------
FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
# The system libraries the wheels link to and do not bundle (readelf -d of every ELF file in the
# worker venv): bpy's X11/Xi/Xfixes/Xrender/xkbcommon and SM/ICE/Xt/Xext (USD); OpenCV's glib;
# CA certificates for R2. libGL.so.1 (USD, OpenCV's Qt) comes from the build stage below.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3.11 ca-certificates \
      libx11-6 libxi6 libxfixes3 libxrender1 libxext6 libxkbcommon0 libsm6 libice6 libxt6 \
      libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

# --- build: the worker venv; its tools (venv, binutils) stay in this stage -----------------------
FROM runtime AS build
# libGL.so.1 is linked but never called: rendering is Cycles (CPU, or CUDA/OptiX on the driver),
# which opens no GL context. So the image takes only the GL dispatch libraries (libglvnd: libgl1,
# libglx0, libglvnd0) unpacked from Debian's packages, without the Mesa stack Debian's libglx0
# depends on (LLVM, Z3, ICU, DRI drivers: ~190 MB). Where GL is wanted, the NVIDIA runtime's
# "graphics" capability mounts the driver's own GLX/EGL vendor libraries.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11-venv binutils \
 && mkdir /tmp/glvnd && cd /tmp/glvnd && apt-get download libgl1 libglx0 libglvnd0 \
 && for deb in ./*.deb; do dpkg-deb -x "$deb" /opt/glvnd; done \
 && find /opt/glvnd/usr/share/doc -type f -not -name copyright -delete \
 && cp -a /opt/glvnd/usr/. /usr/ && ldconfig \
 && cd / && rm -rf /tmp/glvnd /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pod_worker/requirements.txt /tmp/requirements.txt
# One OpenCV: requirements.txt names the build MediaPipe depends on (opencv-contrib-python).
# `pip check` must be clean but for one known line: bpy 5.0.1's wheel metadata is tagged cp39
# (its file name says cp311), so pip reports it "not supported on this platform"; it works.
# BUILD_CA_CERT: a CA bundle for pip behind a TLS-intercepting proxy (scripts/build_image_local.sh
# mounts the host's there); unset in a normal build, and never part of the final image.
ARG BUILD_CA_CERT
RUN python -m pip install ${BUILD_CA_CERT:+--cert "$BUILD_CA_CERT"} --upgrade pip \
 && python -m pip install ${BUILD_CA_CERT:+--cert "$BUILD_CA_CERT"} -r /tmp/requirements.txt \
 && { python -m pip check || true; } \
      | grep -v '^bpy 5\.0\.1 is not supported on this platform$' | (! grep .)
# Lean: drop the symbol tables the wheels ship unstripped (bpy, jaxlib: ~140 MB; dynamic symbols
# stay, and the auditwheel-patched copies in *.libs/ are left alone) and the test suites NumPy,
# SciPy, scikit-image, NetworkX and Matplotlib ship inside their packages (~15 MB; no module
# imports them). The imports at the end fail the build, not the first job, if anything broke or a
# system library is missing.
RUN site=/opt/venv/lib/python3.11/site-packages \
 && find "$site" -type f -name '*.so*' -not -path '*.libs/*' -print0 \
      | xargs -0 sh -c 'for f; do readelf -S "$f" 2>/dev/null | grep -q "\.symtab" && strip --strip-unneeded "$f"; done; true' sh \
 && find "$site/numpy" "$site/scipy" "$site/skimage" "$site/networkx" "$site/matplotlib" -depth -type d -name tests -exec rm -rf {} + \
 && python -c "import bpy, cv2, mediapipe, runpod, boto3, OpenEXR, jax, scipy.optimize, skimage.measure, skimage.graph, networkx, matplotlib.pyplot, trimesh, fast_simplification, xatlas; print('bpy', bpy.app.version_string, 'cv2', cv2.__version__)"

# --- the worker image -------------------------------------------------------------------------------
FROM runtime
COPY --from=build /opt/glvnd/usr/ /usr/
COPY --from=build /opt/venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    POSE_FACTORY_WORKER_PYTHON=/opt/venv/bin/python

# Runs as an unprivileged user. RunPod mounts a network volume (/runpod-volume) owned by root and
# has no setting for the container's user: to keep batches on a volume instead of R2, build with
# --build-arg WORKER_USER=root.
ARG WORKER_USER=worker
RUN ldconfig && useradd --uid 1000 --create-home --shell /usr/sbin/nologin worker
WORKDIR /app
# Without R2 variables and without a volume the worker writes to ./data/storage (a test only).
RUN install -d -o worker -g worker /app/data

# The code the handler runs: the core package, the Blender-side scripts (run as
# `python -m blender_scripts.render_batch` in a child process, cwd /app) and the worker; and the
# smoke job where the SDK looks for it when the container runs without arguments (./test_input.json).
COPY pose_factory/ pose_factory/
COPY blender_scripts/ blender_scripts/
COPY pod_worker/ pod_worker/
COPY pod_worker/test_input.json test_input.json

USER ${WORKER_USER}
CMD ["python", "-u", "pod_worker/handler.py"]
