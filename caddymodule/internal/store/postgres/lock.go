package postgres

import "time"

// unlockTimeout bounds giving a lock back: unlocking, rolling back, or
// closing the connection that holds it.
const unlockTimeout = 5 * time.Second
