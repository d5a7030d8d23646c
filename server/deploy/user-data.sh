#!/bin/sh
# EC2 user data: install imgpipe and start the worker. No keys on the box: the instance
# profile's role (iam-policy.json) is the only credential, found by boto3's default chain.
# Set IMGPIPE_SOURCE to where the project can be fetched from (a git URL or an S3 tarball
# copied by your own bootstrap); the default expects it already unpacked in /opt/imgpipe.
set -eu

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends imagemagick fonts-dejavu-core python3 python3-pip \
    python3-venv git ca-certificates

id imgpipe >/dev/null 2>&1 || useradd --system --home-dir /var/lib/imgpipe --shell /usr/sbin/nologin imgpipe

if [ -n "${IMGPIPE_SOURCE:-}" ] && [ ! -d /opt/imgpipe ]; then
    git clone --depth 1 "$IMGPIPE_SOURCE" /opt/imgpipe
fi
cd /opt/imgpipe
python3 -m pip install --quiet --break-system-packages uv 2>/dev/null || python3 -m pip install --quiet uv
python3 -m uv sync --locked --no-dev

install -d -m 0755 /etc/imgpipe
# Region and names: the defaults (imgpipe-requests, imgpipe-data-<account>-<region>, ...) match
# what `imgserver init` created. Override here if you chose others.
if [ ! -f /etc/imgpipe/imgpipe.toml ]; then
    TOKEN=$(curl -s -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
    REGION=$(curl -s -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/placement/region)
    printf 'backend = "aws"\nregion = "%s"\n' "$REGION" > /etc/imgpipe/imgpipe.toml
fi

install -m 0644 server/deploy/imgserver.service /etc/systemd/system/imgserver.service
systemctl daemon-reload
systemctl enable --now imgserver.service
# Prove it: one line per item in the journal.
sudo -u imgpipe /opt/imgpipe/.venv/bin/imgserver check --backend aws --state-dir /var/lib/imgpipe \
    --config /etc/imgpipe/imgpipe.toml || true
