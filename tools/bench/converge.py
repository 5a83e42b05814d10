# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The converge phase (docs/bench.md): the web host and the plain-task baseline fresh, the rest of the stack, rounds
of timed reruns through the engine's connection and over SSH, the remote execs of each."""
from __future__ import annotations

import statistics

from commands import Host
from common import BASELINE, SITE, WEB_TAGS
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


def phase_converge(playbooks: Playbooks, host: Host, record: dict) -> None:
    """The baseline fresh, then the web host fresh on the host as the baseline found it (undo_baseline); the rest
    of the stack (Redis, Celery, Loki, Promtail: site.yml without tags); rounds of reruns of the web host (its
    tags), the baseline and the whole stack (site.yml); then the web host's and the baseline's reruns over SSH.
    Each rerun's remote execs on one more untimed run with -vvv, the fresh runs' from their own log
    (docs/bench.md). Into `record`, the record's converge part."""
    ssh_host = playbooks.opts.ssh_host
    record['connection'] = playbooks.connection
    record['exec_counting'] = EXEC_COUNTING
    # Both fresh runs on the host as it came (the packages of the base image, fresh lists): the baseline
    # first, then everything it left is taken away again (its packages purged, the downloaded .debs and
    # pip's cache too), then the web host's run, then the baseline once more (untimed) for its reruns.
    host.shell(f"{INSTALLED} > {PACKAGES_BEFORE}")
    record['baseline_fresh'] = playbooks.run('baseline-fresh', BASELINE, log_execs=True)
    record['baseline_undone'] = undo_baseline(host)
    record['fresh'] = playbooks.run('web-fresh', SITE, tags=WEB_TAGS, log_execs=True)
    record['fresh_ratio'] = ratio(record['fresh']['seconds'], record['baseline_fresh']['seconds'])
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
    # Out of the way of the loads: the baseline's app, and Loki and Promtail (logs stay in the journal).
    host.shell('systemctl stop baseline loki promtail', check=False)
