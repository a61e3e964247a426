"""What changes at the root-cause service after inject (within-case pre vs post)."""
from common import *
from stats import _calls,_modal,local_desc
print('%-44s %9s %11s %13s %13s %11s %11s %9s'%('case','traces','rcSpan/tr','rcMed ms','rcP90 ms','rcTrunc%','sysTrunc%','rcNewNm'))
for c in CASES:
    pre,post=split(c); rc=c['root_cause_service']
    def f(T):
        n=len(T); sp=[s for t in T for s in t.spans if s['svc']==rc and s['kind']==2]
        d=[dur(s) for s in sp]
        return n,len(sp)/max(1,n),q(d,.5),q(d,.9)
    m=_modal(pre)
    def trunc(T,svc=None):
        tot=0;tr=0
        for t in T:
            for s in t.spans:
                if s['kind']!=2 or (svc and s['svc']!=svc): continue
                mm=m.get((s['svc'],s['name']))
                if not mm: continue
                cc=_calls(t,s); tot+=1
                tr+= len(cc)<len(mm) and mm[:len(cc)]==cc
        return 100*tr/max(1,tot)
    a=f(pre);b=f(post)
    names_pre={s['name'] for t in pre for s in t.spans if s['svc']==rc}
    new=len({s['name'] for t in post for s in t.spans if s['svc']==rc}-names_pre)
    print('%-44s %4d/%-4d %5.2f/%-5.2f %6.1f/%-6.1f %6.1f/%-6.1f %5.1f/%-5.1f %5.1f/%-5.1f %9d'%(c['case'][:44],a[0],b[0],a[1],b[1],a[2],b[2],a[3],b[3],trunc(pre,rc),trunc(post,rc),trunc(pre),trunc(post),new))
