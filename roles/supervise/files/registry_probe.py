# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Run on the host by the supervise role (python3 -c), once per run: the
# service registry and, in the same look, the state of every systemd unit it
# names and of their listeners (one `systemctl show` for all of them), printed
# as JSON. Reads only.
import json
import subprocess
import sys

try:
    with open(sys.argv[1], encoding='utf-8') as handle:
        registry = json.load(handle)
except (OSError, ValueError):
    registry = None
names = sorted(name for name, service in ((registry or {}).get('services') or {}).items()
               if (service or {}).get('backend') == 'systemd')
units = {}
if names:
    # each service and its listener (socket activation), found or not
    shown = subprocess.run(['systemctl', 'show', '--property=Id,ActiveState,UnitFileState,NeedDaemonReload']
                           + [f'{name}.{kind}' for name in names for kind in ('service', 'socket')],
                           capture_output=True, text=True, check=False)
    for block in shown.stdout.strip().split('\n\n'):
        fields = dict(line.split('=', 1) for line in block.splitlines() if '=' in line)
        if fields.get('Id', '').endswith('.service'):
            units[fields['Id'][:-len('.service')]] = fields
        elif fields.get('Id', '').endswith('.socket'):
            units[fields['Id']] = fields
print(json.dumps({'registry': registry, 'units': units}))
