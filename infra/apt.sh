# Shared by infra/provision.sh and infra/web.sh (sourced): root commands and one apt-get update.
# apt-get waits up to 10 minutes for the dpkg lock (another install, unattended upgrades)
# instead of failing at once.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_get() { DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=600 "$@"; }
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then apt_get update -qq; apt_updated=1; fi
  apt_get install -y -qq "$@" >/dev/null
}
