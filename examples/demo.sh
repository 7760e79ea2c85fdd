#!/usr/bin/env bash
# The README's main job. On a Debian (or Ubuntu) machine, with no docker engine and no image pulls:
#   1. installs what is missing (apt: buildah qemu-user-static binfmt-support skopeo docker-registry,
#      python3-venv; pip: this project with its dependencies, always into its own venv build/venv),
#   2. sets up QEMU user emulation (binfmt_misc) for the platforms this host cannot run natively,
#   3. prepares examples/hello (a static busybox per architecture, from Debian's packages),
#   4. starts a local registry (docker-registry on a free loopback port),
#   5. prints the CI plan, then runs the split build of examples/hello for linux/amd64, linux/arm64
#      and linux/arm/v7 into ./build/oci and into that registry, with the timing table,
#   6. ends with `skopeo inspect --raw` of the index.
# It stops at the first failure with one line saying which step and command failed.
# pip honours its usual environment: PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR installs from a local
# wheelhouse without network (`.ci/install` prepares one in build/wheelhouse).
# Usage: examples/demo.sh        (as root, or as a user who may sudo)
set -Eeuo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "demo.sh: installing packages and setting up binfmt_misc need root; run it as root" >&2
    exit 1
  fi
  exec sudo --preserve-env=PATH,PIP_NO_INDEX,PIP_FIND_LINKS,PIP_INDEX_URL "$0" "$@"
fi

current="starting"
# One line at the first failure (only in the main shell: a failing $(...) reports through it).
on_error() {
  if [ "$BASH_SUBSHELL" -eq 0 ]; then
    echo "demo.sh: failed in \"$current\" (line $2): $3 (exit status $1)" >&2
  fi
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR
step() { current="$*"; printf '\n== %s\n' "$*"; }
export DEBIAN_FRONTEND=noninteractive

step "Installing what is missing"
packages=(buildah qemu-user-static binfmt-support skopeo docker-registry)
# Debian's python3 makes venvs only with python3-venv (ensurepip and the pip it installs).
python3 -c 'import ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "apt packages: all present (${packages[*]})"
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "demo.sh: splitbuild needs Python 3.11 or newer; python3 is $(python3 --version)" >&2
  exit 1
fi

step "Installing splitbuild into build/venv"
# Always its own venv: python3 run here would import ./splitbuild from the source tree whether or
# not its dependencies are installed. The install is redone when pyproject.toml changes.
venv=build/venv
if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' >/dev/null 2>&1; then
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
stamp="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$venv/.splitbuild-installed" 2>/dev/null || true)" != "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e .
  echo "$stamp" >"$venv/.splitbuild-installed"
fi
py="$venv/bin/python"
splitbuild() { "$venv/bin/splitbuild" "$@"; }
version="$(splitbuild --version)"
echo "splitbuild: $version ($venv)"

step "QEMU user emulation (binfmt_misc)"
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
case "$(uname -m)" in
  x86_64) handlers=(qemu-aarch64 qemu-arm) ;;
  aarch64) handlers=(qemu-x86_64) ;;
  *) handlers=(qemu-x86_64 qemu-aarch64 qemu-arm) ;;
esac
for handler in "${handlers[@]}"; do
  entry="/proc/sys/fs/binfmt_misc/$handler"
  if [ ! -e "$entry" ] || [ "$(head -n 1 "$entry")" != enabled ]; then
    update-binfmts --enable "$handler"
  fi
  printf '%s: %s (%s)\n' "$handler" "$(head -n 1 "$entry")" "$(grep '^flags' "$entry")"
done

step "Preparing examples/hello (static busybox per architecture)"
"$py" examples/hello/prepare.py

step "Starting a local registry"
mkdir -p build/registry
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >build/registry/config.yml <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $PWD/build/registry/data}
  delete: {enabled: true}
http: {addr: "127.0.0.1:$port"}
EOF
docker-registry serve build/registry/config.yml >build/registry/registry.log 2>&1 &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null || true' EXIT
"$py" - "$port" <<'EOF'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/v2/"
for _ in range(100):
    try:
        urllib.request.urlopen(url, timeout=1)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("demo.sh: the registry did not start (see build/registry/registry.log)")
print(f"registry at 127.0.0.1:{sys.argv[1]}")
EOF
image="127.0.0.1:$port/demo/hello"

step "The plan: where CI builds each platform"
splitbuild plan --config examples/hello/splitbuild.toml

step "The split build on this machine"
# --jobs 1 builds one platform at a time, so that native and emulated timings do not skew each
# other (the default builds as many platforms at once as there are cores). WORK sets how much the
# example's RUN step computes, so that the cost of emulation shows.
rm -rf build/oci
splitbuild build --config examples/hello/splitbuild.toml \
  --output oci:./build/oci --output "$image" --tag demo \
  --jobs 1 --build-arg WORK=1000000

step "The index in the OCI layout and in the registry"
skopeo inspect --raw oci:./build/oci:demo | "$py" -c 'import hashlib, sys; print("oci:./build/oci:demo", "sha256:" + hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
echo "skopeo inspect --raw docker://$image:demo"
skopeo inspect --raw --tls-verify=false "docker://$image:demo" | "$py" -m json.tool
