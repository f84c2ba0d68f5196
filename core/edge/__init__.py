"""The HTTP edge of the API: what every request meets before Qiao's own code.

* :mod:`.limits` refuses bodies too large while they stream in (413).
* :mod:`.headers` puts security headers on every response.
* :mod:`.auth` resolves the bearer token to an actor for every route.
* :mod:`.body` reads JSON bodies and GET parameters as input errors, not crashes.
* :mod:`.errors` maps Qiao's error codes to HTTP statuses and answers
  every unhandled exception without a traceback.
* :mod:`.text` finds text no database stores.

docs/security.md says what each promises.
"""
