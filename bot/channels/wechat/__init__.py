"""WeChat channels: the Official Account (residents, and staff who use it) and WeCom (企业微信, staff).

``callback`` receives (signature, AES, hostile-XML defences, passive replies), ``client`` is our async
httpx client with the shared access token, ``sender`` picks the delivery path for each outbox row, and
``adapter`` plugs them into ``outreach-bot serve``.
"""
