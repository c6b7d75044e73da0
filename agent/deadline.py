"""The agent's own guard against a forgotten pod: terminate it after the deadline.

RunPod restarts a pod whose main process exits, so exiting is not enough: the
agent asks RunPod to delete its own pod with the pod-scoped key RunPod injects.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from urllib.parse import quote

logger = logging.getLogger(__name__)

# 404: already gone, which is what we wanted.
_DONE_STATUSES = frozenset({200, 202, 204, 404})
# The key will not start working on a retry.
_HOPELESS_STATUSES = frozenset({400, 401, 403})
ATTEMPTS = 3
TIMEOUT_S = 10.0


def terminate_own_pod(
    pod_id: str | None,
    api_key: str | None,
    base_url: str,
    *,
    retry_pause_s: float = 2.0,
) -> bool:
    """DELETE {base_url}/v2/pods/{pod_id}; True when RunPod confirmed (or no pod).

    A few plain retries are enough here, and the agent's image has no retry
    library, so this loop is written out rather than taken from tenacity.
    """
    if not pod_id or not api_key:
        logger.info("no RUNPOD_POD_ID and RUNPOD_API_KEY: no pod to terminate")
        return True
    url = f"{base_url}/v2/pods/{quote(pod_id, safe='')}"
    for attempt in range(1, ATTEMPTS + 1):
        request = urllib.request.Request(  # noqa: S310 - config allows only http(s)
            url, method="DELETE", headers={"Authorization": f"Bearer {api_key}"}
        )
        try:
            opened = urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310
            with opened as response:
                status = int(response.status)
        except urllib.error.HTTPError as error:
            status = error.code
            error.close()
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            logger.warning(
                "terminating pod %s: attempt %d failed: %s", pod_id, attempt, error
            )
            time.sleep(retry_pause_s * attempt)
            continue
        if status in _DONE_STATUSES:
            logger.info("pod %s terminated (DELETE answered %d)", pod_id, status)
            return True
        logger.warning(
            "terminating pod %s: DELETE answered %d (attempt %d)",
            pod_id,
            status,
            attempt,
        )
        if status in _HOPELESS_STATUSES:
            break
        time.sleep(retry_pause_s * attempt)
    logger.error("pod %s could not be terminated; the dashboard's reaper must", pod_id)
    return False
