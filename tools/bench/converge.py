# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The converge phase (docs/bench.md): the web host and the plain-task baseline fresh, the rest of the stack, rounds
of timed reruns through the engine's connection and over SSH, the remote execs of each; more rounds of fresh runs,
each on a host of its own."""
from __future__ import annotations

import statistics
import subprocess

from commands import Host
from common import BASELINE, ROOT, SITE, WEB_TAGS
from playbook_stats import EXEC_COUNTING
from playbooks import Playbooks
from stats import ratio


def rounds(playbooks: Playbooks, runs: list, ssh: bool = False) -> dict:
    """`reruns` rounds of timed reruns; in each, every (key, playbook, tags) once, in order, the baseline among
    them: each sees the same slices of whatever else the machine runs. The runs of each key."""
    where = '-ssh' if ssh else ''
    found = {key: [] for key, _playbook, _tags in runs}
    for index in range(1, playbooks.opts.reruns + 1):
        for key, playbook, tags in runs:
            found[key].append(playbooks.run(f'{key}-rerun{where}-{index}', playbook, tags=tags, ssh=ssh))
    return found


def medians(runs: list, baseline: list) -> dict:
    """The median seconds of some reruns and of the baseline's, their ratio, the most tasks any rerun changed."""
    rerun_s = statistics.median(run['seconds'] for run in runs)
    base_s = statistics.median(run['seconds'] for run in baseline)
    return {'rerun_s': rerun_s, 'baseline_rerun_s': base_s, 'rerun_ratio': ratio(rerun_s, base_s),
            'rerun_changed': max(run['changed'] for run in runs)}


PACKAGES_BEFORE = '/root/bench-packages-before'
# The host's installed packages, one name a line, sorted (for comm).
INSTALLED = "dpkg-query -W -f='${Package}\\n' | sort"


def undo_baseline(host: Host) -> list:
    """Take away what the baseline's fresh run left on the host, so that the web host's fresh run starts where the
    baseline's did: its service, files, user and nginx site; the packages it installed, purged; apt's downloaded
    .debs and pip's cache. The packages purged; an error if the host's packages are not those of before."""
    purged = host.shell(f"{INSTALLED} | comm -13 {PACKAGES_BEFORE} -").split()
    host.shell(
        'systemctl disable --now baseline.service nginx.service >/dev/null 2>&1; '
        'rm -rf /srv/baseline /etc/baseline.env /etc/baseline-gunicorn.conf.py /etc/systemd/system/baseline.service '
        '/etc/ssl/private/baseline.key /etc/ssl/certs/baseline.crt /etc/nginx/sites-available/baseline.conf '
        '/etc/nginx/sites-enabled/baseline.conf /root/.cache/pip; '
        'userdel baseline >/dev/null 2>&1; groupdel baseline >/dev/null 2>&1; systemctl daemon-reload; '
        + (f'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq {" ".join(purged)} >/dev/null; ' if purged else '')
        + 'apt-get clean', timeout=300)
    left = host.shell(f"{INSTALLED} | comm -3 {PACKAGES_BEFORE} -")
    if left:
        raise RuntimeError(f'the host\'s packages differ from before the baseline\'s fresh run: {left}')
    return purged


def fresh_pair(playbooks: Playbooks, host: Host, suffix: str = '', extra: dict | None = None,
               log_execs: bool = False) -> tuple:
    """On a host as it came (the packages of the base image, fresh lists): the baseline's fresh run, then everything
    it left taken away again (its packages purged, the downloaded .debs and pip's cache too), then the web host's
    fresh run. (The baseline's record, the packages purged, the web host's record.)"""
    host.shell(f"{INSTALLED} > {PACKAGES_BEFORE}")
    baseline = playbooks.run(f'baseline-fresh{suffix}', BASELINE, extra=extra, log_execs=log_execs)
    undone = undo_baseline(host)
    return baseline, undone, playbooks.run(f'web-fresh{suffix}', SITE, tags=WEB_TAGS, extra=extra, log_execs=log_execs)


def later_fresh_rounds(playbooks: Playbooks, host: Host, record: dict) -> None:
    """Rounds 2 and on of the fresh runs, each on a new host of its own made as the bench's was
    (tools/harness/bench-host.sh, removed after its round) and reached through the same inventory host
    (ansible_host names the container); then the medians of every round and their ratio."""
    opts = playbooks.opts
    for index in range(2, opts.fresh + 1):
        name = f'{host.name}-fresh-{index}'
        subprocess.run([str(ROOT / 'tools' / 'harness' / 'bench-host.sh'), name, opts.network], check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
        try:
            baseline, _undone, web = fresh_pair(playbooks, Host(host.cli, name), f'-{index}', extra={'ansible_host': name})
        finally:
            subprocess.run([host.cli, 'rm', '-f', name], check=False, capture_output=True, timeout=120)
        record['fresh_rounds'].append({'host': name, 'baseline': baseline, 'web': web})
    record['fresh_s'] = statistics.median(entry['web']['seconds'] for entry in record['fresh_rounds'])
    record['baseline_fresh_s'] = statistics.median(entry['baseline']['seconds'] for entry in record['fresh_rounds'])
    record['fresh_ratio'] = ratio(record['fresh_s'], record['baseline_fresh_s'])


def phase_converge(playbooks: Playbooks, host: Host, record: dict) -> None:
    """The baseline fresh, then the web host fresh on the host as the baseline found it (undo_baseline); the rest
    of the stack (Redis, Celery, Loki, Promtail: site.yml without tags); rounds of reruns of the web host (its
    tags), the baseline and the whole stack (site.yml); then the web host's and the baseline's reruns over SSH.
    Each rerun's remote execs on one more untimed run with -vvv, the fresh runs' from their own log
    (docs/bench.md). Into `record`, the record's converge part."""
    ssh_host = playbooks.opts.ssh_host
    record['connection'] = playbooks.connection
    record['exec_counting'] = EXEC_COUNTING
    # The first round of fresh runs on this host (their remote execs counted from their own logs), then the
    # baseline once more (untimed) for its reruns; the later rounds at the end of the phase.
    record['baseline_fresh'], record['baseline_undone'], record['fresh'] = fresh_pair(playbooks, host, log_execs=True)
    record['fresh_rounds'] = [{'host': host.name, 'baseline': record['baseline_fresh'], 'web': record['fresh']}]
    playbooks.run('baseline-again', BASELINE)
    # The whole stack on the same host: Redis, Celery, Loki and Promtail join the web host's roles.
    record['rest_of_stack'] = playbooks.run('stack-first', SITE, log_execs=True)
    found = rounds(playbooks, [('web', SITE, WEB_TAGS), ('baseline', BASELINE, None), ('stack', SITE, None)])
    record['reruns'], record['baseline_reruns'] = found['web'], found['baseline']
    record.update(medians(found['web'], found['baseline']))
    stack = medians(found['stack'], found['baseline'])
    record['rerun_execs'] = playbooks.count_execs('web-rerun-count', SITE, tags=WEB_TAGS)
    record['baseline_rerun_execs'] = playbooks.count_execs('baseline-rerun-count', BASELINE)
    record['whole_stack'] = dict(stack, reruns=found['stack'],
                                 rerun_execs=playbooks.count_execs('stack-rerun-count', SITE),
                                 baseline='the same baseline reruns as the web host\'s (rounds: web, baseline, stack)')
    if ssh_host:
        playbooks.ssh_warmup()
        found = rounds(playbooks, [('web', SITE, WEB_TAGS), ('baseline', BASELINE, None)], ssh=True)
        record['ssh'] = dict(medians(found['web'], found['baseline']), reruns=found['web'],
                             baseline_reruns=found['baseline'], address=ssh_host,
                             ssh_args='-o ControlMaster=auto -o ControlPersist=60s', pipelining=True,
                             rerun_execs=playbooks.count_execs('web-rerun-ssh-count', SITE, tags=WEB_TAGS, ssh=True),
                             baseline_rerun_execs=playbooks.count_execs('baseline-rerun-ssh-count', BASELINE, ssh=True))
    else:
        record['ssh'] = {'skipped': 'no --ssh-host (sshd not set up by tools/harness/bench.sh)'}
    later_fresh_rounds(playbooks, host, record)
    # Out of the way of the loads: the baseline's app, and Loki and Promtail (logs stay in the journal).
    host.shell('systemctl stop baseline loki promtail', check=False)
