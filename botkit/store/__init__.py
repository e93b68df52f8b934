"""The conversation store: contacts, conversations and messages in SQLite or PostgreSQL.

The schema is created and changed only by the Alembic migrations shipped in
``botkit/store/migrations`` (see ``botkit.store.migrate``).
"""

from botkit.store._files import MAX_STORED_FILE_BYTES, clean_file_name
from botkit.store._handoffs import ConversationTakenError, HandoffEndedError, HandoffPreview
from botkit.store._outage import DatabaseUnavailableError
from botkit.store._retention import Deleted
from botkit.store._unanswered import Unanswered
from botkit.store.records import (
    ContactRecord,
    ConversationRecord,
    ConversationStatus,
    CustomerFileRecord,
    InboundFinish,
    IntakeResult,
    MessageStatus,
    StoredMessage,
)
from botkit.store.settings import StoreSettings, mask_url
from botkit.store.store import MAX_PAGE, UPGRADE_COMMAND, ConversationStore, approx_tokens

__all__ = [
    "MAX_PAGE",
    "MAX_STORED_FILE_BYTES",
    "UPGRADE_COMMAND",
    "ContactRecord",
    "ConversationRecord",
    "ConversationStatus",
    "ConversationStore",
    "ConversationTakenError",
    "CustomerFileRecord",
    "DatabaseUnavailableError",
    "Deleted",
    "HandoffEndedError",
    "HandoffPreview",
    "InboundFinish",
    "IntakeResult",
    "MessageStatus",
    "StoreSettings",
    "StoredMessage",
    "Unanswered",
    "approx_tokens",
    "clean_file_name",
    "mask_url",
]
