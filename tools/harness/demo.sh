#!/usr/bin/env bash
# `make demo`: provision the web stack into one local systemd container with
# the real playbook and inventory (demo/inventory.yml), then show a request
# through nginx and how to reach the host. Runs inside engine.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
: "${DOCKER_HOST:?run through tools/harness/engine.sh (make demo)}"
name=flaskfleet-demo
https_port=${FLASKFLEET_DEMO_HTTPS_PORT:-8443}
http_port=${FLASKFLEET_DEMO_HTTP_PORT:-8080}
cli=$FLASKFLEET_ENGINE_CLI
# shellcheck source=tools/harness/ansible-env.sh
. "$root/tools/harness/ansible-env.sh"
# Loki's and Promtail's release zips (upstream names, SHA256SUMS): nothing
# can be downloaded from GitHub here.
export FLASKFLEET_ARTIFACTS=${FLASKFLEET_ARTIFACTS:-$(cd "$root/.." && pwd)/shared/artifacts}

eval "$(FLASKFLEET_SUITES=bookworm tools/harness/images.sh)"
if ! "$cli" container inspect "$name" >/dev/null 2>&1; then
    "$cli" run -d --name "$name" --hostname "$name" --privileged --cgroupns=host \
        -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /tmp \
        -p "127.0.0.1:$http_port:80" -p "127.0.0.1:$https_port:443" \
        "$FLASKFLEET_IMAGE_BOOKWORM" >/dev/null
fi
"$cli" start "$name" >/dev/null
"$cli" exec "$name" systemctl is-system-running --wait >/dev/null || true
"$cli" exec "$name" apt-get update -qq >/dev/null
ansible-playbook -i demo/inventory.yml playbooks/site.yml

url="https://app.example.test:$https_port"
echo
echo "== A request through nginx (HTTPS, self-signed certificate) =="
whoami=$(curl -sS -k --resolve "app.example.test:$https_port:127.0.0.1" -H 'X-Forwarded-For: 203.0.113.66' "$url/whoami")
echo "$whoami"
request_id=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["headers"]["X-Request-Id"])' "$whoami")
echo
echo "== A Celery task through Redis, enqueued over HTTPS =="
task=$(curl -sS -k --resolve "app.example.test:$https_port:127.0.0.1" -X POST "$url/tasks/wait?ms=200" \
       | python3 -c 'import json, sys; print(json.load(sys.stdin)["task_ids"][0])')
sleep 2
curl -sS -k --resolve "app.example.test:$https_port:127.0.0.1" "$url/tasks/$task"
echo
echo
echo "== That request's lines (nginx, Gunicorn, the app), queried back from Loki by its id =="
query="{host=\"$name\"} | request_id=\"$request_id\""
for _ in $(seq 1 15); do
    lines=$("$cli" exec "$name" curl -sS -G --data-urlencode "query=$query" --data-urlencode since=10m \
            http://127.0.0.1:3100/loki/api/v1/query_range \
            | python3 -c 'import json, sys; [print(s["stream"].get("service"), "|", v[1]) for s in json.load(sys.stdin)["data"]["result"] for v in s["values"]]')
    [ "$(printf '%s\n' "$lines" | grep -c .)" -ge 3 ] && break
    sleep 2
done
printf '%s\n' "$lines"
cat <<MSG

The demo stack (web, Celery worker and beat, Redis, Loki, Promtail) runs in container '$name'.
  HTTPS: $url/   (add '127.0.0.1 app.example.test' to /etc/hosts, or use
         curl -k --resolve app.example.test:$https_port:127.0.0.1 $url/whoami)
  HTTP:  http://127.0.0.1:$http_port/ (308 to HTTPS for app.example.test)
  Shell: $cli exec -it $name bash    (journalctl -u gunicorn-app -u celery-app-default, systemctl status nginx)
  Tasks: curl -k -X POST .../tasks/wait?ms=500, then .../tasks/<id>
  Logs:  $cli exec $name curl -sG --data-urlencode 'query={service="nginx"}' http://127.0.0.1:3100/loki/api/v1/query_range
         (every line carries the request id nginx returns as X-Request-ID)
  Rerun: make demo (idempotent)      Remove: $cli rm -f $name
MSG
