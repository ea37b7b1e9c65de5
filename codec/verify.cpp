// verify_then_deliver: decode, compare with the input, and only then write (see verify.h).
#include "codec/verify.h"

#include <stdexcept>

namespace lorazip {

void verify_then_deliver(std::string_view original, const std::string& packed,
                         const std::function<std::string(const std::string& packed)>& decode,
                         const std::function<void()>& deliver, const std::string& name, bool remove_input) {
  if (decode(packed) != original)
    throw std::runtime_error(name + ": verification failed: the compressed file does not decode to the input; nothing written" +
                             (remove_input ? ", input kept" : ""));
  deliver();
}

}  // namespace lorazip
