-- 007_own_message_sender: a message the session sent (from_me) is from the session's own account. Rows stored
-- before this carried the chat as their sender (the recipient in a direct chat, the group JID in a group):
-- `sender_jid` and the content's `from`, `fromPhone`, `fromLid` become the session's `me` (its phone JID, phone
-- and LID). Sessions with no `me` (never paired, or logged out before this ran) are left as they were: their
-- account is not known.
UPDATE messages m
   SET sender_jid = s.me->>'jid',
       content = (m.content - 'fromPhone' - 'fromLid')
                 || jsonb_build_object('from', s.me->>'jid')
                 || CASE WHEN jsonb_typeof(s.me->'phone') = 'string' THEN jsonb_build_object('fromPhone', s.me->>'phone') ELSE '{}'::jsonb END
                 || CASE WHEN jsonb_typeof(s.me->'lid') = 'string' THEN jsonb_build_object('fromLid', s.me->>'lid') ELSE '{}'::jsonb END
  FROM sessions s
 WHERE m.session_id = s.id
   AND m.from_me
   AND jsonb_typeof(s.me->'jid') = 'string'
   AND (m.sender_jid IS DISTINCT FROM s.me->>'jid' OR m.content->>'from' IS DISTINCT FROM s.me->>'jid');
