"""WeCom (企业微信) self-built app: the staff channel ``"wecom"``.

Grid workers, leaders and admins get case cards (``template_card`` of type ``button_interaction``) with
接单 / 已处理 / 转派 / 重复 buttons, and answer with a click or the same keywords as on every other
channel (``接单 12``, ``完成 12 已清理``). ``callback`` receives (URL verification, AES envelope,
signature and hostile-XML checks, store-then-handle), ``client`` is our async API client (token shared
with the Official Account's ``TokenSource``), ``limits`` keeps WeCom's per-member quota, ``cards``
builds cards and card updates, ``sender`` delivers outbox rows, ``adapter`` plugs them into
``outreach-bot serve``.
"""
