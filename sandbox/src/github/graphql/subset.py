"""Writes schema.graphql: the sandbox's subset of GitHub's public GraphQL
schema, every type, field, argument and enum value printed exactly as GitHub
declares them (descriptions dropped), for the fields and arguments listed in
SPEC; enums come whole, unions keep the members the subset has, interfaces
the subset implements. Fails (exit 1) when SPEC names something GitHub does
not have or the subset is not a valid schema.

    python3 subset.py path/to/github/schema.graphql > schema.graphql

GitHub's schema: https://docs.github.com/public/fpt/schema.docs.graphql, or
schema.graphql of https://github.com/octokit/graphql-schema. Needs
graphql-core 3.2 (pip install graphql-core)."""
import sys
from graphql import (build_ast_schema, parse, GraphQLObjectType, GraphQLInterfaceType,
                     GraphQLUnionType, GraphQLEnumType, GraphQLInputObjectType, GraphQLScalarType,
                     get_named_type, print_type, build_schema, validate_schema)
from graphql.pyutils import Undefined
from graphql.utilities import ast_from_value
from graphql.language import print_ast

full = build_ast_schema(parse(open(sys.argv[1]).read()), assume_valid_sdl=True, assume_valid=True)

CONN = ['nodes', 'edges', 'pageInfo', 'totalCount']
EDGE = ['cursor', 'node']
PAGE = 'after,before,first,last'
SPEC = {
  'Query': ['repository(owner,name,followRenames)', 'node(id)', 'nodes(ids)', 'viewer',
            f'search({PAGE},query,type)'],
  'Node': ['id'],
  'Actor': ['avatarUrl(size)', 'login', 'resourcePath', 'url'],
  'RepositoryOwner': ['avatarUrl(size)', 'id', 'login', 'resourcePath', 'url'],
  'GitObject': ['abbreviatedOid', 'id', 'oid'],
  'User': ['avatarUrl(size)', 'databaseId', 'id', 'login', 'name', 'resourcePath', 'url'],
  'Bot': ['avatarUrl(size)', 'databaseId', 'id', 'login', 'resourcePath', 'url'],
  'Organization': ['avatarUrl(size)', 'databaseId', 'id', 'login', 'name', 'resourcePath', 'url'],
  'Team': ['id', 'name', 'organization', 'slug'],
  'Repository': ['createdAt', 'databaseId', 'defaultBranchRef', 'deleteBranchOnMerge', 'description',
                 'hasIssuesEnabled', 'id', 'isArchived', 'isEmpty', 'isFork', 'isPrivate',
                 'issue(number)', f'issueOrPullRequest(number)',
                 f'issues({PAGE},filterBy,orderBy,states)', f'labels({PAGE})',
                 'mergeCommitAllowed', 'name', 'nameWithOwner', 'owner',
                 'pullRequest(number)', f'pullRequests({PAGE},baseRefName,headRefName,orderBy,states)',
                 'pushedAt', 'rebaseMergeAllowed', 'ref(qualifiedName)', 'resourcePath',
                 'squashMergeAllowed', 'updatedAt', 'url', 'viewerPermission', 'visibility'],
  'Issue': ['activeLockReason', f'assignees({PAGE})', 'author', 'authorAssociation', 'body', 'closed', 'closedAt',
            f'comments({PAGE})', 'createdAt', 'databaseId', 'id', 'includesCreatedEdit', f'labels({PAGE})',
            'lastEditedAt', 'locked', 'milestone', 'number', f'projectCards({PAGE})', 'reactionGroups',
            'repository', 'resourcePath', 'state', 'stateReason(enableDuplicate)', 'title', 'updatedAt', 'url',
            'viewerDidAuthor'],
  'PullRequest': ['activeLockReason', 'additions', f'assignees({PAGE})', 'author', 'authorAssociation',
                  'autoMergeRequest', 'baseRef', 'baseRefName', 'baseRefOid', 'body', 'changedFiles', 'closed',
                  'closedAt', f'comments({PAGE})', f'commits({PAGE})', 'createdAt', 'databaseId', 'deletions',
                  f'files({PAGE})', 'headRef', 'headRefName', 'headRefOid', 'headRepository',
                  'headRepositoryOwner', 'id', 'includesCreatedEdit', 'isCrossRepository', 'isDraft',
                  f'labels({PAGE})', 'lastEditedAt', f'latestReviews({PAGE})', 'locked', 'maintainerCanModify',
                  'mergeCommit', 'mergeStateStatus', 'mergeable', 'merged', 'mergedAt', 'mergedBy', 'milestone',
                  'number', 'potentialMergeCommit', f'projectCards({PAGE})', 'reactionGroups', 'repository',
                  'resourcePath', 'reviewDecision', f'reviewRequests({PAGE})', f'reviews({PAGE},author,states)',
                  'state', 'title', 'updatedAt', 'url', 'viewerDidAuthor'],
  'IssueComment': ['author', 'authorAssociation', 'body', 'createdAt', 'databaseId', 'id',
                   'includesCreatedEdit', 'isMinimized', 'lastEditedAt', 'minimizedReason',
                   'reactionGroups', 'updatedAt', 'url', 'viewerDidAuthor'],
  'Label': ['color', 'description', 'id', 'isDefault', 'name', 'url'],
  'Milestone': ['description', 'dueOn', 'id', 'number', 'state', 'title', 'url'],
  'ProjectCard': ['column', 'id', 'project'],
  'Project': ['id', 'name'],
  'ProjectColumn': ['id', 'name'],
  'ReactionGroup': ['content', f'users({PAGE})', 'viewerHasReacted'],
  'Ref': ['id', 'name', 'prefix', 'target'],
  'Commit': ['abbreviatedOid', 'additions', 'author', 'authoredDate', f'authors({PAGE})', 'committedDate',
             'committer', 'deletions', 'id', 'message', 'messageBody', 'messageHeadline', 'oid',
             'statusCheckRollup', 'url'],
  'GitActor': ['date', 'email', 'name', 'user'],
  'PullRequestCommit': ['commit', 'id', 'url'],
  'PullRequestChangedFile': ['additions', 'changeType', 'deletions', 'path'],
  'PullRequestReview': ['author', 'authorAssociation', 'body', 'commit', 'id', 'reactionGroups', 'state',
                        'submittedAt'],
  'ReviewRequest': ['id', 'requestedReviewer'],
  'AutoMergeRequest': ['authorEmail', 'commitBody', 'commitHeadline', 'enabledAt', 'enabledBy', 'mergeMethod'],
  'StatusCheckRollup': ['id', f'contexts({PAGE})', 'state'],
  'StatusContext': ['id', 'context', 'createdAt', 'description', 'isRequired(pullRequestId,pullRequestNumber)',
                    'state', 'targetUrl'],
  'CheckRun': ['id', 'checkSuite', 'completedAt', 'conclusion', 'detailsUrl',
               'isRequired(pullRequestId,pullRequestNumber)', 'name', 'startedAt', 'status'],
  'CheckSuite': ['id', 'workflowRun'],
  'WorkflowRun': ['id', 'workflow'],
  'Workflow': ['id', 'name'],
  'PageInfo': ['endCursor', 'hasNextPage', 'hasPreviousPage', 'startCursor'],
  'SearchResultItemConnection': ['edges', 'issueCount', 'nodes', 'pageInfo'],
  'IssueFilters': ['assignee', 'createdBy', 'mentioned', 'since', 'states'],
  'IssueOrder': ['direction', 'field'],
}
for c in ['IssueConnection', 'PullRequestConnection', 'IssueCommentConnection', 'UserConnection',
          'LabelConnection', 'ProjectCardConnection', 'PullRequestCommitConnection',
          'PullRequestChangedFileConnection', 'PullRequestReviewConnection', 'ReviewRequestConnection',
          'GitActorConnection', 'ReactingUserConnection', 'StatusCheckRollupContextConnection']:
    SPEC[c] = CONN
    SPEC[c.replace('Connection', 'Edge')] = EDGE
SPEC['SearchResultItemEdge'] = EDGE

def parse_entry(e):
    if '(' in e:
        name, args = e[:-1].split('(')
        return name, [a for a in args.split(',') if a]
    return e, []

out_types = {}
needed = set()
problems = []
for tname, entries in SPEC.items():
    T = full.get_type(tname)
    if T is None:
        problems.append(f'no type {tname}'); continue
    fields = {}
    for e in entries:
        fname, args = parse_entry(e)
        allf = T.fields
        if fname not in allf:
            problems.append(f'{tname}.{fname} not in GitHub schema'); continue
        f = allf[fname]
        for a in args:
            if a not in f.args: problems.append(f'{tname}.{fname}({a}) not in GitHub schema')
        fields[fname] = (f, [a for a in args if a in f.args])
    out_types[tname] = fields

def named(t): return get_named_type(t).name
lines = []
def deprecated(f):
    r = getattr(f, 'deprecation_reason', None)
    if r is None: return ''
    return ' @deprecated(reason: %s)' % print_ast(ast_from_value(r, full.get_type('String')))
def default(a):
    if a.default_value is Undefined: return ''
    return ' = ' + print_ast(ast_from_value(a.default_value, a.type))

refs = set()
for tname, fields in out_types.items():
    T = full.get_type(tname)
    if isinstance(T, GraphQLInputObjectType):
        lines.append(f'input {tname} {{')
        for fname, (f, _) in fields.items():
            lines.append(f'  {fname}: {f.type}{default(f)}')
            refs.add(named(f.type))
        lines.append('}')
        continue
    kw = 'interface' if isinstance(T, GraphQLInterfaceType) else 'type'
    ifaces = [i.name for i in T.interfaces if i.name in SPEC
              and all(x in fields for x in out_types[i.name])]
    head = f'{kw} {tname}' + (' implements ' + ' & '.join(ifaces) if ifaces else '')
    lines.append(head + ' {')
    for fname, (f, args) in fields.items():
        a = ''
        if args:
            a = '(' + ', '.join(f'{x}: {f.args[x].type}{default(f.args[x])}' for x in args) + ')'
            for x in args: refs.add(named(f.args[x].type))
        lines.append(f'  {fname}{a}: {f.type}{deprecated(f)}')
        refs.add(named(f.type))
    lines.append('}')

builtin = {'String', 'Int', 'Boolean', 'ID', 'Float'}
done = set(SPEC)
while True:
    todo = sorted(r for r in refs if r not in done and r not in builtin)
    if not todo: break
    for r in todo:
        done.add(r)
        T = full.get_type(r)
        if isinstance(T, GraphQLEnumType):
            vals = []
            for v, ev in T.values.items():
                d = ev.deprecation_reason
                vals.append('  ' + v + (' @deprecated(reason: %s)' % print_ast(ast_from_value(d, full.get_type('String'))) if d else ''))
            lines.append(f'enum {r} {{'); lines.extend(vals); lines.append('}')
        elif isinstance(T, GraphQLScalarType):
            lines.append(f'scalar {r}')
        elif isinstance(T, GraphQLUnionType):
            members = [m.name for m in T.types if m.name in SPEC]
            lines.append(f'union {r} = ' + ' | '.join(members))
        else:
            problems.append(f'{r} ({type(T).__name__}) referenced but not in SPEC')
sdl = '\n'.join(lines) + '\n'
for p in problems: print('PROBLEM', p, file=sys.stderr)
sub = build_schema(sdl)
errs = validate_schema(sub)
for e in errs: print('INVALID', e.message, file=sys.stderr)
if problems or errs:
    sys.exit(1)
source = sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]
print('# The expedite sandbox\'s subset of GitHub\'s public GraphQL schema, written')
print('# by subset.py from ' + source + '.')
print('# Do not edit by hand: change SPEC in subset.py and run it again.')
print(sdl, end='')
