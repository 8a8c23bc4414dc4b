"""Standard Webhooks signature checks: any of ``SIM_WEBHOOK_SECRET``'s secrets may match."""

from __future__ import annotations

from collections.abc import Mapping

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sim.errors import ConfigError, describe

__all__ = ["Verifier"]


class Verifier:
    """Checks a request's signature against every configured secret (for rotation)."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        webhooks = []
        for secret in secrets:
            try:
                webhooks.append(Webhook(secret))
            except Exception as exc:  # binascii.Error, EmptyWebhookSecretError
                raise ConfigError(
                    f"SIM_WEBHOOK_SECRET: not a valid whsec_ secret ({exc})"
                ) from None
        self._webhooks = tuple(webhooks)

    @property
    def enabled(self) -> bool:
        """False when no secret is configured: signatures are not checked."""
        return bool(self._webhooks)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """``None`` when signatures are off or one secret matches, else why not."""
        if not self._webhooks:
            return None
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return "the body is not UTF-8, so its signature cannot match"
        problem = "no matching signature"
        for webhook in self._webhooks:
            try:
                webhook.verify(text, dict(headers), json_parse=False)
                return None
            except (WebhookVerificationError, ValueError) as exc:  # ValueError: malformed header
                problem = str(exc) or describe(exc)
        return problem
