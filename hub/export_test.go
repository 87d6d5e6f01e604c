package hub

// SentSlots is how many of the last frames written to a session may be acked.
const SentSlots = sentSlots
