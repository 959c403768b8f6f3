package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/socialgate/socialgate/caddymodule/internal/admin"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
)

func runUsers(ctx context.Context, c *call) error {
	limit, _ := c.flags.GetInt("limit")
	offset, _ := c.flags.GetInt("offset")
	if (ops.Page{Limit: limit, Offset: offset}).Check() != nil || len(c.args) != 0 {
		return errors.New("--limit must be 1-500 and --offset at least 0, and users takes no arguments")
	}
	email, _ := c.flags.GetString("email")
	return withConn(ctx, c, func(cn *conn) error {
		page, err := cn.Users(ctx, email, limit, offset)
		if err != nil {
			return err
		}
		if asJSON, _ := c.flags.GetBool("json"); asJSON {
			for _, u := range page.Users {
				fmt.Fprintf(c.Stdout, "%s\n", u.JSON)
			}
			return nil
		}
		tw := table(c.Stdout, "ID", "NAME", "EMAIL", "CREATED")
		for _, u := range page.Users {
			row(tw, u.ID, u.Name, u.PrimaryEmail, millis(u.CreatedAt))
		}
		tw.Flush()
		fmt.Fprintf(c.Stdout, "%d of %s\n", len(page.Users), plural(page.Total, "user"))
		return nil
	})
}

func runUser(ctx context.Context, c *call) error {
	args, err := c.argsOnly(1, "exactly one user id")
	if err != nil {
		return err
	}
	return withConn(ctx, c, func(cn *conn) error {
		d, err := cn.User(ctx, args[0])
		if err != nil {
			return err
		}
		if asJSON, _ := c.flags.GetBool("json"); asJSON {
			_, err := fmt.Fprintf(c.Stdout, "%s\n", d.JSON)
			return err
		}
		printUser(c.Stdout, d)
		return nil
	})
}

// printUser writes a user, its accounts and its sessions as text.
func printUser(w io.Writer, d admin.UserDetail) {
	u := d.User
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row(tw, "id", u.ID)
	row(tw, "name", u.Name)
	var emails []string
	for _, e := range u.Emails {
		emails = append(emails, e.Address+" ("+e.Verification.Status+")")
	}
	row(tw, "emails", strings.Join(emails, ", "))
	row(tw, "created", millis(u.CreatedAt))
	row(tw, "last sign-in", millis(u.LastSignInAt))
	tw.Flush()

	fmt.Fprintf(w, "\n%s\n", plural(len(u.Accounts), "account"))
	if len(u.Accounts) > 0 {
		tw = table(w, "ID", "PROVIDER", "ISSUER", "SUBJECT", "EMAIL", "STATUS", "CREATED")
		for _, a := range u.Accounts {
			email := a.Email
			if email != "" && !a.EmailVerified {
				email += " (unverified)"
			}
			row(tw, a.ID, a.Provider, a.Issuer, a.Subject, email, a.Verification.Status, millis(a.CreatedAt))
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\n%s\n", plural(len(d.Sessions), "session"))
	if len(d.Sessions) > 0 {
		tw = table(w, "ID", "CREATED", "EXPIRES", "IP", "USER AGENT")
		for _, s := range d.Sessions {
			row(tw, s.ID, millis(s.CreatedAt), millis(s.ExpireAt), s.IP, s.UserAgent)
		}
		tw.Flush()
	}
}

func runUserDelete(ctx context.Context, c *call) error {
	args, err := c.argsOnly(1, "exactly one user id")
	if err != nil {
		return err
	}
	return withConn(ctx, c, func(cn *conn) error {
		if err := cn.DeleteUser(ctx, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "deleted user %s with its accounts and sessions\n", args[0])
		return nil
	})
}

func runSessionRevoke(ctx context.Context, c *call) error {
	args, err := c.argsOnly(1, "exactly one session id")
	if err != nil {
		return err
	}
	return withConn(ctx, c, func(cn *conn) error {
		s, err := cn.RevokeSession(ctx, args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "revoked a session of user %s\n", s.UserID)
		return nil
	})
}

func runAccountDisconnect(ctx context.Context, c *call) error {
	args, err := c.argsOnly(2, "a user id and an external account id")
	if err != nil {
		return err
	}
	return withConn(ctx, c, func(cn *conn) error {
		if err := cn.DisconnectAccount(ctx, args[0], args[1]); err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "disconnected account %s from user %s\n", args[1], args[0])
		return nil
	})
}

// withConn runs fn on the store the flags name, and closes it.
func withConn(ctx context.Context, c *call, fn func(cn *conn) error) error {
	cn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer cn.close()
	return cn.done(ctx, c, fn(cn))
}
