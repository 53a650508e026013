#!/usr/bin/env bash
# Builds the worker image without Docker and runs the handler inside it (docs/deployment.md,
# "Building without Docker"). Not part of CI: it downloads ~1.5 GB of wheels and takes minutes.
#
#   sudo scripts/build_image_local.sh            # base (once) → image → render test_input.json
#   sudo scripts/build_image_local.sh --no-run   # build only
#
# 1. Base: a minimal Debian 12 (bookworm) root file system made with debootstrap from a Debian
#    mirror, slimmed like the official debian:bookworm-slim image, imported into buildah's storage
#    as $BASE_IMAGE. Made once; --rebuild-base makes it again.
# 2. Image: the repository's Dockerfile, built with `buildah bud --isolation chroot` and
#    --build-arg BASE_IMAGE=$BASE_IMAGE (the registry build uses debian:bookworm-slim instead).
# 3. Checks inside the image: `pip check` (one known bpy line allowed), the cv2 distributions,
#    the user it runs as; then the image's own CMD with no arguments (the SDK renders
#    /app/test_input.json and exits), timed from container start to the handler's first result,
#    and each request of REQUESTS below through --test_input (a posture answer must hold the 8 angles).
# 4. Prints the image's size and each layer's.
#
# IMAGE          the image to build (default localhost/pose-factory-worker:local)
# BASE_IMAGE     the local base (default localhost/pose-factory-base:bookworm)
# DEBIAN_MIRROR  Debian mirror for debootstrap (default: this machine's apt mirror, else
#                http://deb.debian.org/debian); DEBIAN_SECURITY_MIRROR likewise
# NICE           prefix for the heavy steps (default "nice -n 19 ionice -c3"; NICE= for none)
# Needs root (debootstrap, and buildah's chroot isolation), buildah and debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/pose-factory-worker:local}
BASE_IMAGE=${BASE_IMAGE:-localhost/pose-factory-base:bookworm}
SUITE=bookworm
NICE=${NICE-nice -n 19 ionice -c3}
# The requests the handler answers inside the image, after the CMD's own test_input.json: the smoke
# job again, and a posture request (a front and a side render of the mannequin, base64 JPEG; made by
# scripts/make_posture_input.py), whose answer must be a success with the contract's 8 angles.
REQUESTS=(pod_worker/test_input.json pod_worker/test_posture_input.json)

REBUILD_BASE=0 RUN=1
for arg in "$@"; do
  case "$arg" in
    --rebuild-base) REBUILD_BASE=1 ;;
    --no-run) RUN=0 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "build_image_local: unknown option $arg (use --rebuild-base, --no-run)" >&2; exit 2 ;;
  esac
done

say() { echo "build_image_local: $*"; }
die() { echo "build_image_local: $*" >&2; exit 2; }
missing() {  # what to install, per family of distributions
  die "$1 is not installed. Install it with your package manager:
    Debian 12+ / Ubuntu 22.04+:  sudo apt-get install -y $2
    Fedora / RHEL 9+:            sudo dnf install -y $3
    Arch:                        sudo pacman -S $4
  (buildah builds and runs images without a Docker daemon; debootstrap makes the Debian base
  that stands in for a registry's base image. See docs/deployment.md, 'Building without Docker'.)"
}

command -v buildah >/dev/null 2>&1 || missing buildah "buildah" "buildah" "buildah"
[ "$(id -u)" = 0 ] || die "run as root (sudo): debootstrap and buildah's chroot isolation need it"

# This machine's Debian mirror (sources.list or deb822 .sources), else the Debian CDN.
apt_uri() {  # $1: suite suffix to look for, e.g. "" or "-security"
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk -v suite="$SUITE$1" '
      /^deb / && $3 == suite && $2 ~ /^https?:/ {print $2; exit}
      /^URIs:/ {uri = $2} /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == suite && uri ~ /^https?:/) {print uri; exit}}' ||
    true  # no such file, or cat cut short by awk's exit
}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-$(apt_uri "")}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-$(apt_uri "-security")}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }

# --- 1. the Debian base -----------------------------------------------------------------------------
make_base() {
  command -v debootstrap >/dev/null 2>&1 || missing debootstrap "debootstrap" "debootstrap" "debootstrap"
  local work rootfs ctr t0
  work=$(mktemp -d /var/tmp/pose-factory-rootfs.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  rootfs=$work/rootfs
  t0=$(now)
  say "debootstrap $SUITE (minbase) from $DEBIAN_MIRROR"
  $NICE debootstrap --variant=minbase --arch=amd64 "$SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  # Slim like debian:bookworm-slim: no docs, man pages or translations, now and for later installs.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
APT::Install-Recommends "false";
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,groff,info,lintian}/* "$rootfs"/var/lib/apt/lists/* \
         "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $SUITE main
deb $DEBIAN_MIRROR $SUITE-updates main
deb $DEBIAN_SECURITY_MIRROR $SUITE-security main
EOF
  # The container engine provides these at run time.
  rm -rf "${rootfs:?}"/dev/* "${rootfs:?}"/proc/* "${rootfs:?}"/sys/* "${rootfs:?}"/run/* "${rootfs:?}"/tmp/*
  : >"$rootfs/etc/hostname"; : >"$rootfs/etc/resolv.conf"
  $NICE tar -C "$rootfs" --numeric-owner --xattrs -cf "$work/rootfs.tar" .
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd '["bash"]' --os linux --arch amd64 \
    --label "org.opencontainers.image.description=Debian $SUITE minbase (debootstrap from $DEBIAN_MIRROR)" "$ctr"
  buildah commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
  rm -rf "$work"; trap - EXIT
  say "base $BASE_IMAGE imported in $(secs "$t0" "$(now)") s"
}

if [ "$REBUILD_BASE" = 1 ] || ! have_image "$BASE_IMAGE"; then
  make_base
else
  say "base $BASE_IMAGE is there (--rebuild-base to make it again)"
fi

# --- 2. the image -----------------------------------------------------------------------------------
# Behind a TLS-intercepting proxy (local CAs added to this host's bundle), pip in the build uses
# the host's bundle, mounted for the build's RUN steps only. BUILD_CA_BUNDLE=path chooses another.
ca_args=()
host_bundle=/etc/ssl/certs/ca-certificates.crt
if [ -z "${BUILD_CA_BUNDLE:-}" ] && [ -f "$host_bundle" ] &&
   compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  BUILD_CA_BUNDLE=$host_bundle
fi
if [ -n "${BUILD_CA_BUNDLE:-}" ]; then
  say "pip uses the CA bundle $BUILD_CA_BUNDLE (this host adds its own CAs)"
  ca_args=(--volume "$BUILD_CA_BUNDLE:/run/build-ca.crt:ro" --build-arg BUILD_CA_CERT=/run/build-ca.crt)
fi
t0=$(now)
say "building $IMAGE from the Dockerfile on $BASE_IMAGE"
$NICE buildah bud --isolation chroot --layers --pull=never "${ca_args[@]}" \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" -f Dockerfile .
say "built $IMAGE in $(secs "$t0" "$(now)") s"

# --- 3. inside the image ----------------------------------------------------------------------------
if [ "$RUN" = 1 ]; then
  ctr=$(buildah from --pull-never "$IMAGE")
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  inside() { buildah run --isolation chroot "$ctr" -- "$@"; }

  say "pip check in the image:"
  pip_out=$(inside sh -c 'python -m pip check 2>&1; true')  # buildah run adds lines when it fails
  echo "$pip_out" | sed 's/^/    /'
  unexpected=$(echo "$pip_out" | grep -v -e '^bpy 5\.0\.1 is not supported on this platform$' \
                                         -e '^No broken requirements found\.$' || true)
  [ -z "$unexpected" ] || die "pip check reports more than bpy's known wheel-tag line"

  say "distributions that install cv2:"
  cv2_dists=$(inside python -c '
import importlib.metadata as md
print("\n".join(sorted({d.metadata["Name"] for d in md.distributions()
                        if any(str(f).startswith("cv2/") for f in (d.files or []))})))')
  echo "$cv2_dists" | sed 's/^/    /'
  [ "$(echo "$cv2_dists" | grep -c .)" = 1 ] || die "expected exactly one distribution installing cv2"
  say "runs as: $(inside id)"
  # Every library the venv's ELF files link to is in the image (in the venv, or a system package),
  # but the GPU drivers, which the host provides at run time, and what bpy's wheel itself leaves
  # out: the libraries of its MaterialX GLSL/OSL/MDL modules (and their libOpenGL), never loaded.
  say "libraries the venv links to that are not in the image:"
  absent=$(inside python -c '
import os, re, subprocess
files = [os.path.join(d, f) for d, _, fs in os.walk("/opt/venv") for f in fs if ".so" in f]
have = {os.path.basename(f) for f in files}
need = {}
for f in files:
    ldd = subprocess.run(["ldd", f], capture_output=True, text=True).stdout
    for lib in re.findall(r"^\s*(\S+) => not found", ldd, re.M):
        if lib not in have:
            need.setdefault(lib, []).append(os.path.relpath(f, "/opt/venv/lib/python3.11/site-packages"))
for lib, users in sorted(need.items()):
    print(lib, "<-", users[0] + (f" (+{len(users) - 1})" if len(users) > 1 else ""))')
  echo "$absent" | sed 's/^/    /'
  while read -r lib _; do
    case "$lib" in
      ""|libcuda.so.1|libamdhip64.so.*|libze_loader.so.*) ;;          # GPU drivers (host)
      libMaterialX*.so.*|libOpenGL.so.0) ;;                           # bpy's unused MaterialX modules
      *) die "$lib is linked by the venv but not in the image: add its Debian package to the Dockerfile" ;;
    esac
  done <<<"$absent"

  # The CMD with no arguments, as `docker run IMAGE` runs it: the SDK reads ./test_input.json.
  mapfile -t argv < <(buildah inspect --type image "$IMAGE" |
                      python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)["OCIv1"]["config"]["Cmd"]))')
  say "container start: ${argv[*]} (no arguments)"
  log=$(mktemp); t0=$(now); first=""
  while IFS= read -r line; do
    echo "    $line" >>"$log"
    if [ -z "$first" ] && [[ "$line" == *"Job result:"* ]]; then first=$(now); fi
  done < <(inside "${argv[@]}" 2>&1; echo "exit status $?")
  t_end=$(now)
  grep -E 'Job result:|completed successfully|error|Error|exit status' "$log" | cut -c1-400
  grep -q 'exit status 0' "$log" || { cat "$log" >&2; die "the handler failed on test_input.json"; }
  [ -n "$first" ] || { cat "$log" >&2; die "no 'Job result:' line from the handler"; }
  say "container start → handler's first result: $(secs "$t0" "$first") s (exit after $(secs "$t0" "$t_end") s)"
  rm -f "$log"

  for req in "${REQUESTS[@]}"; do
    t0=$(now)
    out=$(inside python -u pod_worker/handler.py --test_input "$(cat "$req")" 2>&1) ||
      { echo "$out" >&2; die "the handler failed on $req"; }
    result=$(echo "$out" | grep -m1 'Job result:') || { echo "$out" >&2; die "no 'Job result:' line for $req"; }
    echo "$result" | cut -c1-400
    say "$req answered in $(secs "$t0" "$(now)") s"
    if python3 -c 'import json, sys; sys.exit(0 if "front" in json.load(open(sys.argv[1]))["input"] else 1)' "$req"; then
      # The posture API's answer (DESIGN.md §7): {"status": "success", "data": {"front_view": 4 angles,
      # "side_view": 4 angles}}; an error answer completes the job too, so the SDK's exit status says nothing.
      python3 -c '
import ast, sys
out = ast.literal_eval(sys.argv[1].split("Job result:", 1)[1].strip())["output"]
want = {"front_view": {"shoulder_tilt", "pelvic_tilt", "head_tilt", "body_tilt"},
        "side_view": {"back_tilt", "neck_tilt", "body_tilt", "hip_tilt"}}
data = out.get("data") or {}
if out.get("status") != "success" or {v: set(data.get(v) or ()) for v in want} != want:
    sys.exit(f"build_image_local: the posture answer is not a success with the 8 angles: {out}")
print("build_image_local: posture answer: status success, " + "; ".join(
    f"{v}: " + ", ".join(f"{k} {data[v][k]:+.2f}" for k in sorted(want[v])) for v in want))' "$result" ||
        die "the posture request failed"
    fi
  done
  buildah rm "$ctr" >/dev/null; trap - EXIT
fi

# --- 4. sizes ---------------------------------------------------------------------------------------
# Layer sizes: the uncompressed layer tars of the image's manifest, named by the history entry
# that made them (what `docker history` shows).
buildah inspect --type image "$IMAGE" | python3 -c '
import json, sys
info = json.load(sys.stdin)
layers = json.loads(info["Manifest"])["layers"]
steps = [h.get("created_by", "") for h in info["OCIv1"].get("history", []) if not h.get("empty_layer")]
steps = [""] * (len(layers) - len(steps)) + steps  # a base imported without history
total = sum(l["size"] for l in layers)
print("build_image_local: layers (uncompressed):")
for layer, step in zip(layers, steps):
    step, size = " ".join(step.replace("/bin/sh -c ", "").split()), layer["size"]
    print(f"  {size / 1e6:9.1f} MB  {step[:110]}")
print(f"build_image_local: image {sys.argv[1]}: {total / 1e9:.2f} GB in {len(layers)} layers")
' "$IMAGE"
