// Conversation archives (codec/archive.h, kArchiveConversations): how the turns before a turn become
// the context it is coded given. The archive names the template (ArchiveTurnTemplate); the
// renderers live above the codec (gen/context.h renders ChatML and the base's own template), so
// the archive code sees only this interface.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codec/archive.h"

namespace lorazip {

struct ConversationTurn {
  std::string role, text;
};

// What a turn is coded given. A turn of role "" (a lone "text") is coded from BOS alone; any other
// turn given context(the turns before it in the conversation, its role); an empty result means from
// BOS alone too. Both sides must render alike, so a renderer is a pure function of its arguments.
class TurnRenderer {
 public:
  virtual ~TurnRenderer() = default;
  virtual std::vector<int32_t> context(const std::vector<ConversationTurn>& before, const std::string& role) const = 0;
};

// The renderer for an archive's template; std::runtime_error when the base cannot render it.
using TurnRendererFactory = std::function<std::unique_ptr<TurnRenderer>(ArchiveTurnTemplate)>;

}  // namespace lorazip
