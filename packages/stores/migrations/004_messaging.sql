-- 004_messaging: what the message routes need on top of 001's messages and idempotency_keys
-- (packages/router/src/messages, docs/messaging.md).

-- The raw proto.Message bytes (base64): Baileys' getMessage (retry requests), quotes and reactions.
ALTER TABLE messages ADD COLUMN raw text;
-- Sessions' own JIDs differ from the chat in groups; the recipient's LID when the chat was addressed by LID.
ALTER TABLE messages ADD COLUMN chat_lid text;

-- Lock of an in-progress key: a request whose lock expired (its shard or router died) may be taken over.
ALTER TABLE idempotency_keys ADD COLUMN locked_until timestamptz;
-- The WhatsApp message id the key sends with (deriveMessageId), to find the row after a crash.
ALTER TABLE idempotency_keys ADD COLUMN message_id text;
