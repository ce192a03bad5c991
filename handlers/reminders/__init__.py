"""Reminders: children's vaccinations (国家免疫规划) and health follow-ups, with consent.

* ``schedule``: pure; the versioned NIP schedule (handlers/data/nip_schedule_*.yaml) and a child's doses
  with due dates, statuses and catch-up (补种) dates.
* ``programmes``: pure; the follow-up programmes (handlers/data/followup_programmes.yaml).
* ``planner``: turns a child or a follow-up enrolment into reminder rows (before, on, after the due
  date; quiet hours; postponement).
* ``chat``: the ChatFeature (enrolment dialog, dose replies, 推迟, 退订, second guardian, staff commands).
  Mixed into it: ``doses_chat`` (plan lines, dose replies, 推迟), ``guardians_chat`` (the second
  guardian's join code), ``followups_chat`` (the health staff's follow-up commands).
* ``jobs``: the periodic job sending what is due through the outbox.
* ``cli``: ``outreach-bot vaccines`` and ``outreach-bot reminders due``.
"""
