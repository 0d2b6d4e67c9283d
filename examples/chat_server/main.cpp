// chat_server: line-based chat rooms over TCP.
//
//     build/examples/chat_server/chat_server --listen 127.0.0.1:7002
//     nc 127.0.0.1 7002        then: /nick ada   /join lobby   hello   /who   /quit
//
// Each connection is a fiber that reads lines in a straight loop. The room
// directory (room -> members) is one immutable snapshot behind an
// rcu::Ptr: every loop reads it to broadcast with no lock and no atomic
// read-modify-write; a join, a leave or a rename builds a new snapshot,
// publishes it, and retires the old one, which is freed after a grace period
// (no reader can still see it). Updates are serialised by running them all on
// one group, so they need no mutex either.
//
// A message reaches another member through Stream::post(): the text is
// queued on that member's connection and its own fiber sends it. A member
// that does not read is disconnected once `max_output` bytes wait for it:
// back-pressure on one slow reader never holds the room.
//
// Protocol (one line each way, "\n" or "\r\n"):
//   /nick NAME    -> "ok nick NAME"
//   /join ROOM    -> "ok join ROOM" (leaves the room it was in); the room
//                    gets "* NAME joined ROOM"
//   /who          -> "members ROOM: NAME NAME ..."
//   /quit         -> "bye", then the server closes
//   anything else -> "NAME: TEXT" to every other member of the room
//   errors        -> "error: ..." (a line over 4 KiB closes the connection)
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <quiesce/framework/command_line.hpp>
#include <quiesce/framework/runtime.hpp>
#include <quiesce/framework/stream.hpp>
#include <quiesce/rcu/rcu.hpp>

namespace {

using quiesce::tcp::Stream;

struct Member {
    std::shared_ptr<Stream> stream;
    std::string nick;
};

/// One version of the directory; never changed once published.
struct Directory : quiesce::rcu::Head {
    std::map<std::string, std::vector<Member>, std::less<>> rooms;
};

class Chat {
public:
    explicit Chat(quiesce::Runtime& runtime)
        : updates_(runtime.scheduler().make_group({.name = "chat directory"})) {}
    ~Chat() { delete directory_.load_owned(); }
    Chat(const Chat&) = delete;
    Chat& operator=(const Chat&) = delete;

    void serve(Stream& stream) {
        std::shared_ptr<Stream> self = stream.shared_from_this();
        std::string nick = "guest" + std::to_string(stream.id());
        std::string room;
        stream.write("welcome " + nick + ": /nick NAME, /join ROOM, /who, /quit\n");
        while (auto line = stream.read_until("\n", 4096)) {
            if (!line->empty() && line->back() == '\r') line->pop_back();
            if (line->rfind("/nick ", 0) == 0 && line->size() > 6) {
                nick = line->substr(6);
                if (!room.empty()) update(self, room, room, nick, "");
                stream.write("ok nick " + nick + "\n");
            } else if (line->rfind("/join ", 0) == 0 && line->size() > 6) {
                std::string next = line->substr(6);
                update(self, room, next, nick, "ok join " + next + "\n");
                room = next;
            } else if (*line == "/who") {
                stream.write(who(room));
            } else if (*line == "/quit") {
                stream.write("bye\n");
                break;
            } else if (room.empty()) {
                stream.write("error: /join a room first\n");
            } else {
                broadcast(room, stream, nick + ": " + *line + "\n");
            }
        }
        if (!room.empty()) update(self, room, "", nick, "");
    }

private:
    /// Sends `text` to every member of `room` but `from`. Reads the current
    /// directory with no lock: this fiber does not suspend in here.
    void broadcast(std::string_view room, const Stream& from, const std::string& text) {
        const Directory* now = directory_.load();
        auto it = now->rooms.find(room);
        if (it == now->rooms.end()) return;
        for (const Member& member : it->second)
            if (member.stream.get() != &from)
                member.stream->post([text](Stream& to) { to.write(text); });
    }

    std::string who(std::string_view room) {
        if (room.empty()) return "error: /join a room first\n";
        std::string out = "members " + std::string(room) + ":";
        const Directory* now = directory_.load();
        if (auto it = now->rooms.find(room); it != now->rooms.end())
            for (const Member& member : it->second) out += " " + member.nick;
        return out + "\n";
    }

    /// Moves `who` from room `from` to room `to` (either may be empty) under
    /// the name `nick`, then sends `reply` to it. Runs on the directory's
    /// group: one update at a time, each publishing a new snapshot.
    void update(const std::shared_ptr<Stream>& who, std::string from, std::string to,
                std::string nick, std::string reply) {
        updates_.post([this, who, from = std::move(from), to = std::move(to),
                       nick = std::move(nick), reply = std::move(reply)] {
            const Directory* old = directory_.load_owned();
            auto* next = new Directory;
            next->rooms = old->rooms;
            if (!from.empty()) {
                auto& members = next->rooms[from];
                std::erase_if(members, [&](const Member& m) { return m.stream == who; });
                if (members.empty()) next->rooms.erase(from);
            }
            if (!to.empty()) {
                for (const Member& member : next->rooms[to])
                    if (from != to)
                        member.stream->post([line = "* " + nick + " joined " + to +
                                                    "\n"](Stream& s) { s.write(line); });
                if (from == to)
                    std::erase_if(next->rooms[to],
                                  [&](const Member& m) { return m.stream == who; });
                next->rooms[to].push_back({who, nick});
            }
            quiesce::rcu::Domain::default_domain().retire(directory_.exchange(next));
            if (!reply.empty()) who->post([reply](Stream& s) { s.write(reply); });
        });
    }

    quiesce::sched::Group updates_;
    quiesce::rcu::Ptr<Directory> directory_{new Directory};
};

}  // namespace

int main(int argc, char** argv) {
    quiesce::CommandLine cli("chat_server", "Line-based chat rooms over TCP.",
                             {.listen = {"127.0.0.1:7002"}});
    unsigned max_queue_kib = 1024;
    cli.app()
        .add_option("--max-queue-kib", max_queue_kib,
                    "output queued for a member that does not read, before it is "
                    "disconnected")
        ->capture_default_str();
    quiesce::RuntimeOptions options = cli.parse(argc, argv);

    quiesce::Runtime runtime(options);
    Chat chat(runtime);
    quiesce::tcp::ListenerOptions listener{.name = "chat"};
    listener.connection.max_output = std::size_t{max_queue_kib} * 1024;
    for (const auto& address : options.listen)
        runtime.listen_fibers(
            address, [&chat](Stream& stream) { chat.serve(stream); }, listener);
    return runtime.run();
}
