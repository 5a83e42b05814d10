#!/bin/sh
# Final steps shared by the Containerfile and the debootstrap build:
# a container-friendly systemd (no getty, no module loading, no udev
# triggers), an empty machine-id regenerated at boot, clean apt lists.
set -eu
for unit in systemd-modules-load.service getty.target console-getty.service \
            systemd-udevd.service systemd-udev-trigger.service \
            sys-kernel-config.mount sys-kernel-debug.mount \
            apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "/etc/systemd/system/${unit}"
done
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log
