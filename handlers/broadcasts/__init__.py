"""Broadcasts and the outreach calendar: admins reach every resident (or some grids, or a tag) through
the outbox, at each platform's limits, exactly once; residents opt out with 退订通知.

``audience`` (who), ``service`` (create, confirm, cancel, progress, report), ``expansion`` (outbox
rows, exactly once), ``chat`` (the ChatFeature), ``calendar`` (health days → drafts for approval),
``wechat_mass`` (群发 and its monthly quota), ``jobs`` (the periodic job), ``cli`` (``outreach-bot
broadcast``; ``cli_reports``: ``broadcasts``; ``cli_tags``: ``tags``; ``cli_env``: what they share).
"""
