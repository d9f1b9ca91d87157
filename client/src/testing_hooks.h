// Test seams of the SDK (not installed; tests only). Null in production.
#ifndef INVAD_CLIENT_SRC_TESTING_HOOKS_H_
#define INVAD_CLIENT_SRC_TESTING_HOOKS_H_

namespace invad::client::internal {

// Runs on a StreamSession's writer thread right after it opens a replacement stream and before it
// takes the session's lock again: a test widens that window (a new stream that breaks at once
// must not be lost while the writer is in it). Pass nullptr to remove.
using ReopenHook = void (*)();
void SetAfterReopenHookForTesting(ReopenHook hook);

}  // namespace invad::client::internal

#endif  // INVAD_CLIENT_SRC_TESTING_HOOKS_H_
