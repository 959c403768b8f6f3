package ui

import (
	"fmt"
	"html/template"
	"slices"
	"strings"
	"text/template/parse"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
)

// definedNames are the names of the templates t defines so far.
func definedNames(t *template.Template) map[string]bool {
	names := map[string]bool{}
	for _, d := range t.Templates() {
		names[d.Name()] = true
	}
	return names
}

// checkMessages checks the messages of the templates that t defines and
// before did not: each call of t needs a quoted message ID that the
// catalogue has, followed by exactly the message's placeholders as quoted
// names.
func checkMessages(t *template.Template, before map[string]bool, cat *i18n.Catalog) error {
	for _, d := range t.Templates() {
		if before[d.Name()] || d.Tree == nil {
			continue
		}
		var err error
		walk(d.Tree.Root, func(cmd *parse.CommandNode) {
			if err == nil && isT(cmd.Args[0]) {
				if e := checkCall(cmd, cat); e != nil {
					err = fmt.Errorf("line %s: %w", lineOf(d.Tree, cmd), e)
				}
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// checkCall checks one call: t "id" "name" value "name" value ….
func checkCall(cmd *parse.CommandNode, cat *i18n.Catalog) error {
	if len(cmd.Args) < 2 {
		return fmt.Errorf("%s: t needs a message ID", cmd)
	}
	id, ok := cmd.Args[1].(*parse.StringNode)
	if !ok {
		return fmt.Errorf("%s: t's message ID must be a quoted string", cmd)
	}
	params, ok := cat.Params(id.Text)
	if !ok {
		return fmt.Errorf("no message file has the message %q", id.Text)
	}
	var names []string
	for i := 2; i < len(cmd.Args); i += 2 {
		name, ok := cmd.Args[i].(*parse.StringNode)
		if !ok || i+1 == len(cmd.Args) {
			return fmt.Errorf("%s: t's arguments after the message ID are pairs of a quoted placeholder name and a value", cmd)
		}
		names = append(names, name.Text)
	}
	slices.Sort(names)
	if !slices.Equal(names, params) {
		return fmt.Errorf("message %q takes the placeholders %v; this call gives %v", id.Text, params, names)
	}
	return nil
}

// isT reports whether a command calls the function t.
func isT(n parse.Node) bool {
	id, ok := n.(*parse.IdentifierNode)
	return ok && id.Ident == "t"
}

// walk calls f for every command in the tree under n.
func walk(n parse.Node, f func(*parse.CommandNode)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				walk(c, f)
			}
		}
	case *parse.ActionNode:
		walk(n.Pipe, f)
	case *parse.PipeNode:
		if n != nil {
			for _, c := range n.Cmds {
				walk(c, f)
			}
		}
	case *parse.CommandNode:
		f(n)
		for _, a := range n.Args {
			walk(a, f)
		}
	case *parse.ChainNode:
		walk(n.Node, f)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, f)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, f)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, f)
	case *parse.TemplateNode:
		walk(n.Pipe, f)
	}
}

func walkBranch(b *parse.BranchNode, f func(*parse.CommandNode)) {
	walk(b.Pipe, f)
	walk(b.List, f)
	walk(b.ElseList, f)
}

// lineOf is the line of n in its template file.
func lineOf(tree *parse.Tree, n parse.Node) string {
	loc, _ := tree.ErrorContext(n) // name:line:column
	parts := strings.Split(loc, ":")
	return parts[max(len(parts)-2, 0)]
}

// fixMessages writes into the templates of t, a clone for l's language,
// the words of each t call without placeholders, escaped: most of a page's
// words then cost nothing when it renders. (html/template's Clone copied
// the trees, so the other languages' clones keep their calls.)
func fixMessages(t *template.Template, l *i18n.Locale) {
	for _, d := range t.Templates() {
		if d.Tree != nil {
			fixList(d.Tree.Root, l)
		}
	}
}

func fixList(list *parse.ListNode, l *i18n.Locale) {
	if list == nil {
		return
	}
	for i, n := range list.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			if id, ok := fixedCall(n.Pipe); ok {
				list.Nodes[i] = &parse.TextNode{NodeType: parse.NodeText, Pos: n.Pos, Text: []byte(template.HTMLEscapeString(l.T(id)))}
			}
		case *parse.ListNode:
			fixList(n, l)
		case *parse.IfNode:
			fixList(n.List, l)
			fixList(n.ElseList, l)
		case *parse.RangeNode:
			fixList(n.List, l)
			fixList(n.ElseList, l)
		case *parse.WithNode:
			fixList(n.List, l)
			fixList(n.ElseList, l)
		}
	}
}

// fixedCall reports whether a pipeline is only a t call with a message ID
// and no placeholders, and returns the ID.
func fixedCall(p *parse.PipeNode) (string, bool) {
	if len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 2 || !isT(p.Cmds[0].Args[0]) {
		return "", false
	}
	id, ok := p.Cmds[0].Args[1].(*parse.StringNode)
	if !ok {
		return "", false
	}
	return id.Text, true
}
