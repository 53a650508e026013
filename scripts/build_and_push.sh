#!/usr/bin/env bash
# Builds the worker image (Dockerfile at the repository root) for RunPod and pushes it.
#
#   POSE_FACTORY_IMAGE=docker.io/<user>/pose-factory-worker scripts/build_and_push.sh
#
# POSE_FACTORY_IMAGE  registry/repository of the image, without a tag (required)
# TAG                 image tag (default: the git short sha, "-dirty" when the tree has changes)
# PUSH_LATEST=1       also tag and push :latest
# NO_PUSH=1           build only
# ENGINE              docker or buildah (default: docker when installed, else buildah, which builds
#                     without a daemon: docs/deployment.md, "Building without Docker")
# BASE_IMAGE          the Dockerfile's Debian 12 base (default there: debian:bookworm-slim)
# Log in first (`docker login <registry>` or `buildah login <registry>`); no credential is read or
# printed here.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build_and_push: $*" >&2; exit 2; }

IMAGE=${POSE_FACTORY_IMAGE:-}
[ -n "$IMAGE" ] || die "POSE_FACTORY_IMAGE is not set: set it to the image's registry/repository, e.g. POSE_FACTORY_IMAGE=docker.io/<user>/pose-factory-worker (no tag; TAG defaults to the git short sha)"
case "$IMAGE" in
  *@*) die "POSE_FACTORY_IMAGE=$IMAGE: give the repository without a digest" ;;
  */*) ;;
  *) die "POSE_FACTORY_IMAGE=$IMAGE: expected registry/user/name or user/name, e.g. docker.io/<user>/pose-factory-worker" ;;
esac
last=${IMAGE##*/}
case "$last" in *:*) die "POSE_FACTORY_IMAGE=$IMAGE: leave the tag out and set TAG instead" ;; esac

if [ -z "${TAG:-}" ]; then
  TAG=$(git rev-parse --short HEAD 2>/dev/null) || die "TAG is not set and this is not a git checkout: set TAG"
  if [ -n "$(git status --porcelain 2>/dev/null)" ]; then TAG="$TAG-dirty"; fi
fi
if [ -z "${ENGINE:-}" ]; then
  if command -v docker >/dev/null 2>&1; then ENGINE=docker
  elif command -v buildah >/dev/null 2>&1; then ENGINE=buildah
  else die "neither docker nor buildah is installed: install Docker, or buildah (Debian/Ubuntu: sudo apt-get install -y buildah; Fedora: sudo dnf install -y buildah)"
  fi
fi
case "$ENGINE" in
  docker|buildah) command -v "$ENGINE" >/dev/null 2>&1 || die "ENGINE=$ENGINE: $ENGINE is not installed or not on the PATH" ;;
  *) die "ENGINE=$ENGINE: use docker or buildah" ;;
esac
build_args=()
if [ -n "${BASE_IMAGE:-}" ]; then build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE"); fi

REF="$IMAGE:$TAG"
echo "build_and_push: building $REF (linux/amd64) with $ENGINE"
if [ "$ENGINE" = docker ]; then
  docker build --platform linux/amd64 ${build_args[@]+"${build_args[@]}"} -t "$REF" .
else
  buildah bud --platform linux/amd64 ${build_args[@]+"${build_args[@]}"} -t "$REF" .
fi
if [ "${PUSH_LATEST:-0}" = 1 ]; then "$ENGINE" tag "$REF" "$IMAGE:latest"; fi
if [ "${NO_PUSH:-0}" = 1 ]; then
  echo "build_and_push: built $REF (NO_PUSH=1, not pushed)"
  exit 0
fi
if [ "$ENGINE" = docker ]; then docker push "$REF"; else buildah push "$REF"; fi
if [ "${PUSH_LATEST:-0}" = 1 ]; then "$ENGINE" push "$IMAGE:latest"; fi
echo "build_and_push: pushed $REF — use it as the endpoint's container image"
