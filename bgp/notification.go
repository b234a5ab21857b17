package bgp

import (
	"fmt"
	"strings"
	"time"

	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Notification is a BGP NOTIFICATION message sent to or received from a
// peer, decoded.
type Notification struct {
	Code, Subcode uint8
	// Text names the code and subcode as the RFCs do: "Cease / Maximum
	// Number of Prefixes Reached".
	Text string
	At   time.Time
}

func newNotification(code, subcode uint8, at time.Time) *Notification {
	return &Notification{Code: code, Subcode: subcode, Text: notificationText(code, subcode), At: at}
}

// notificationCodes names the error codes and subcodes (RFC 4271, 4486,
// 5492, 6608, 7313, 8203, 8538).
var notificationCodes = map[uint8]struct {
	name string
	sub  map[uint8]string
}{
	1: {"Message Header Error", map[uint8]string{1: "Connection Not Synchronized", 2: "Bad Message Length", 3: "Bad Message Type"}},
	2: {"OPEN Message Error", map[uint8]string{1: "Unsupported Version Number", 2: "Bad Peer AS", 3: "Bad BGP Identifier",
		4: "Unsupported Optional Parameter", 6: "Unacceptable Hold Time", 7: "Unsupported Capability", 11: "Role Mismatch"}},
	3: {"UPDATE Message Error", map[uint8]string{1: "Malformed Attribute List", 2: "Unrecognized Well-known Attribute",
		3: "Missing Well-known Attribute", 4: "Attribute Flags Error", 5: "Attribute Length Error", 6: "Invalid ORIGIN Attribute",
		8: "Invalid NEXT_HOP Attribute", 9: "Optional Attribute Error", 10: "Invalid Network Field", 11: "Malformed AS_PATH"}},
	4: {"Hold Timer Expired", nil},
	5: {"Finite State Machine Error", map[uint8]string{1: "Unexpected Message in OpenSent", 2: "Unexpected Message in OpenConfirm",
		3: "Unexpected Message in Established"}},
	6: {"Cease", map[uint8]string{1: "Maximum Number of Prefixes Reached", 2: "Administrative Shutdown", 3: "Peer De-configured",
		4: "Administrative Reset", 5: "Connection Rejected", 6: "Other Configuration Change", 7: "Connection Collision Resolution",
		8: "Out of Resources", 9: "Hard Reset"}},
	7: {"ROUTE-REFRESH Message Error", map[uint8]string{1: "Invalid Message Length"}},
}

// notificationText renders a code and subcode: "Cease / Administrative
// Reset", "Hold Timer Expired", "Cease / subcode 42".
func notificationText(code, subcode uint8) string {
	c, ok := notificationCodes[code]
	if !ok {
		return fmt.Sprintf("code %d / subcode %d", code, subcode)
	}
	if subcode == 0 {
		return c.name
	}
	if s, ok := c.sub[subcode]; ok {
		return c.name + " / " + s
	}
	return fmt.Sprintf("%s / subcode %d", c.name, subcode)
}

// gobgpCodes maps GoBGP's names of error codes and subcodes (as in its
// disconnect messages) back to the numbers.
var gobgpCodes = func() map[string][2]uint8 {
	m := map[string][2]uint8{}
	for code := uint8(1); code <= 7; code++ {
		for sub := uint8(0); sub <= 16; sub++ {
			m[gobgp.NewNotificationErrorCode(code, sub).String()] = [2]uint8{code, sub}
		}
	}
	return m
}()

// parseDisconnect reads GoBGP's disconnect message ("notification-sent
// cease/...", "notification-received ...") into the notification and
// whether it was sent; nil for other reasons.
func parseDisconnect(msg string, at time.Time) (n *Notification, sent bool) {
	for prefix, isSent := range map[string]bool{"notification-sent ": true, "notification-received ": false} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			if c, ok := gobgpCodes[rest]; ok {
				return newNotification(c[0], c[1], at), isSent
			}
		}
	}
	return nil, false
}

// disconnectText explains GoBGP's disconnect message to an operator.
func disconnectText(msg string) string {
	switch msg {
	case "graceful-restart", "read-failed", "write-failed":
		return "connection lost without a NOTIFICATION (the peer closed or reset TCP, or it failed)"
	case "hold-timer-expired":
		return "hold timer expired: no KEEPALIVE or UPDATE from the peer within the hold time"
	case "admin-down":
		return "administratively down"
	case "restart-timer-expired":
		return "the peer's graceful-restart time passed before it came back"
	case "invalid-msg":
		return "invalid message from the peer"
	}
	if n, sent := parseDisconnect(msg, time.Time{}); n != nil {
		if sent {
			return "NOTIFICATION sent: " + n.Text
		}
		return "NOTIFICATION received: " + n.Text
	}
	return msg
}
