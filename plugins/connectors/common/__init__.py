"""What every connector needs once: errors, call records, tokens, rate limits, retries, crypto.

Vendor packages build on :class:`~.caller.Caller`, which runs one logical call as attempts:
it waits for the API's rate limit, hands each attempt's outcome to the call-record sink,
refreshes an invalid token once, and backs off before retrying what may be retried.
"""
