// Package forward delivers every call record to the CRM, at least once
// (CALLPOP_HISTORY_FORWARD_URL, docs/forwarding.md).
//
// The webhook hands each history record to Forwarder.Enqueue, which stores it
// durably in a Queue before it returns, so the PBX is answered 200 only for
// a record that will reach the CRM. Forwarder.Run takes the records off the
// queue in order of arrival and POSTs each as JSON (an Item) to the CRM,
// retrying with back-off while the CRM is down, and moving a record the CRM
// rejects for good (a 4xx other than 408 and 429) to the dead letters.
//
// Two queues: RedisQueue for a cluster (a Redis stream; one node at a time
// sends, under a lease, so order holds and a crashed node's record is sent
// by the next one), and FileQueue for the embedded single node (a JSON-lines
// journal in a directory, fsynced on every change, compacted as records are
// acknowledged).
//
// # Delivery
//
// Each POST carries the header Idempotency-Key: <callid>:<user key> (Key),
// also in the body as "key". A rating (cmd=rating) that arrives after its
// record was enqueued sends the record again, rating included, under
// <callid>:<user key>:rating:<rating> (RatingKey, Forwarder.EnqueueRating);
// a rating that arrives first is already in the record. A record may arrive more than once — a node
// that stops between the CRM's 2xx and the queue's acknowledgement sends it
// again — so the CRM must treat a repeated key as the same record. The same
// key enqueued again within DefaultDedupeWindow (24 h) is not queued again:
// the PBX may repeat a webhook.
//
// # Flags
//
// Item.Flags names what the CRM should do beyond filing the record
// (docs/pbx-api.md, "What the CRM is expected to build on it"). A record may
// carry several; the list is empty, never absent, when none applies.
//
//   - missed_unknown_number (FlagMissedUnknownNumber): an incoming call that
//     was not answered (status Missed or Cancel) from a number no directory
//     knows (the record has no contact). The CRM creates a lead, e.g. for the
//     senior manager, so the caller is called back.
//   - outgoing_unknown_number (FlagOutgoingUnknownNumber): an outgoing call,
//     whatever its status, to a number no directory knows. The CRM creates a
//     contact or lead.
//   - unmapped_user (FlagUnmappedUser): the record's user is not a person — the
//     switch itself ("pbx", e.g. a call missed in the IVR), a group login
//     ("g_<uuid>"), or empty (event.IsPerson). The CRM files the record under
//     its default user ("all others", "admin") so the history stays whole.
//
// A contact "no directory knows" is a record whose Contact is nil (or has
// neither a name nor a responsible): neither the look-up when the history
// arrived nor the one while the call rang found the number.
package forward
