#!/usr/bin/python
# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: checks
short_description: Check a role's input in one task and report every problem at once
version_added: 0.1.0
description:
  - Evaluates each check's conditions with the task's variables, like M(ansible.builtin.assert), and fails with the
    message of every check that does not hold, not only the first.
  - A check's message is templated only when the check fails, so it may name values that only then make sense.
  - A condition that cannot be evaluated (a value of the wrong kind) counts as a check that does not hold; its
    error is appended to the message.
  - Runs on the controller only (an action plugin); the task never touches the host.
options:
  checks:
    description: The checks, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      that:
        description:
          - One condition or a list of them (Jinja expressions without braces); all must hold.
          - A template that yields a list of conditions is resolved first.
        type: raw
        required: true
      msg:
        description:
          - What is wrong and which variable to set; templated when a condition does not hold.
          - Without it, the condition's own error (a filter that raises with a message naming the variable) or the
            condition itself is reported.
        type: str
      when:
        description:
          - The check applies only when this condition (or all of these) holds.
          - A condition here that cannot be evaluated is reported as a problem of the check.
        type: raw
  argument_spec:
    description:
      - The name of an entry point of the task's role (its C(meta/argument_specs.yml)) whose options are validated
        against the task's variables first, as ansible-core validates a role's entry point when the role is included
        (types, choices, required), in this task instead of a task of its own.
      - A variable the spec refuses fails the task with the validator's message, naming the variable; the checks are
        not evaluated then (they assume the types the spec accepted).
    type: str
attributes:
  check_mode:
    support: full
    description: Nothing changes in either mode.
  diff_mode:
    support: none
    description: Nothing changes.
  platform:
    support: full
    platforms: all
    description: Runs on the controller.
author:
  - flaskfleet.stack contributors (@flaskfleet)
"""

EXAMPLES = r"""
- name: Check the Gunicorn settings
  flaskfleet.stack.checks:
    checks:
      - that: gunicorn_workers is none or gunicorn_workers >= 1
        msg: "gunicorn_workers must be null (the plan decides) or at least 1, got {{ gunicorn_workers }}"
      - that: nginx_resolvers | length > 0
        when: nginx_ocsp_stapling
        msg: nginx_resolvers must name a resolver when nginx_ocsp_stapling is on
"""

RETURN = r"""
problems:
  description:
    - The message of every check that did not hold, in order; empty when all hold.
    - With O(argument_spec), the validator's messages when it refused a variable.
  returned: always
  type: list
  elements: str
argument_errors:
  description: The validator's messages, when O(argument_spec) was given and a variable was refused.
  returned: failure of the argument spec
  type: list
  elements: str
"""
