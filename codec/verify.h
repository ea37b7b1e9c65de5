// The round-trip check `lorazip compress` runs before it writes anything (--verify, and always
// before --rm removes the input): the compressed bytes must decode back to the input, or nothing
// is delivered. The decoder is passed in, so the failure path is testable with a wrong one.
#pragma once
#include <functional>
#include <string>
#include <string_view>

namespace lorazip {

// Decodes `packed` with `decode` and compares it with `original`. When they match, calls
// `deliver` (which writes the output and, with --rm, removes the input); otherwise throws
// std::runtime_error "NAME: verification failed: the compressed file does not decode to the
// input; nothing written[, input kept]" (", input kept" when `remove_input`) and never calls
// `deliver`. Errors thrown by `decode` pass through, also before any delivery.
void verify_then_deliver(std::string_view original, const std::string& packed,
                         const std::function<std::string(const std::string& packed)>& decode,
                         const std::function<void()>& deliver, const std::string& name, bool remove_input);

}  // namespace lorazip
